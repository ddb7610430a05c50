import ActAsConfig
import ActAsStore
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// Where and how to connect: what `store.url` (and `store.password_file`) said.
public struct PostgresEndpoint: Sendable, Equatable {
    public enum TLSMode: String, Sendable {
        case disable, require, verifyFull
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(host: String, port: Int, user: String, password: String?, database: String, tls: TLSMode) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// For messages: never the password.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// `require`: encrypted, certificate not checked (libpq's meaning); `verify-full`: chain
    /// and host name checked against the system's trust store.
    func clientTLS() throws -> TLSConfiguration? {
        switch tls {
        case .disable: return nil
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return configuration
        case .verifyFull:
            return TLSConfiguration.makeClientConfiguration()
        }
    }

    public func connectionConfiguration(applicationName: String) throws -> PostgresConnection.Configuration {
        let tlsMode: PostgresConnection.Configuration.TLS
        if let tls = try clientTLS() {
            tlsMode = .require(try NIOSSLContext(configuration: tls))
        } else {
            tlsMode = .disable
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: tlsMode)
        configuration.options.tlsServerName = tls == .verifyFull && !Self.isAddressLiteral(host) ? host : nil
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        return configuration
    }

    func clientConfiguration(poolSize: Int, applicationName: String) throws -> PostgresClient.Configuration {
        let tlsMode: PostgresClient.Configuration.TLS = try clientTLS().map { .require($0) } ?? .disable
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: tlsMode)
        configuration.options.maximumConnections = poolSize
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.tlsServerName = tls == .verifyFull && !Self.isAddressLiteral(host) ? host : nil
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        return configuration
    }

    static func isAddressLiteral(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }
}

/// One row, read by column name; a missing or mistyped column reads as nil.
struct Row {
    let row: PostgresRandomAccessRow

    init(_ row: PostgresRow) { self.row = row.makeRandomAccess() }

    func string(_ column: String) -> String? {
        guard row.contains(column) else { return nil }
        return (try? row[column].decode(String?.self)) ?? nil
    }

    func int(_ column: String) -> Int64? {
        guard row.contains(column) else { return nil }
        return (try? row[column].decode(Int64?.self)) ?? nil
    }

    func double(_ column: String) -> Double? {
        guard row.contains(column) else { return nil }
        return (try? row[column].decode(Double?.self)) ?? nil
    }

    func date(_ column: String) -> Date? {
        double(column).map { Date(timeIntervalSince1970: $0) }
    }

    func bytes(_ column: String) -> Data? {
        guard row.contains(column), var buffer = (try? row[column].decode(ByteBuffer?.self)) ?? nil else { return nil }
        return buffer.readData(length: buffer.readableBytes)
    }
}

/// Store errors as callers know them: a constraint is a conflict, everything about reaching
/// the server (refused, dropped, timed out, pool closed) is `unavailable`.
enum PostgresErrors {
    static func translate(_ error: any Error) -> any Error {
        if error is StoreError || error is CancellationError { return error }
        if let error = error as? PostgresTransactionError {
            // The statement (or our own check) that failed inside, not the wrapper.
            if let inner = error.closureError ?? error.beginError ?? error.commitError { return translate(inner) }
            return StoreError.unavailable("store unreachable: \(error)")
        }
        if let error = error as? PSQLError {
            if error.code == .server {
                let state = error.serverInfo?[.sqlState] ?? ""
                let message = error.serverInfo?[.message] ?? "\(error)"
                // 23xxx: integrity constraint violations (unique, foreign key, not null, check).
                if state.hasPrefix("23") { return StoreError.conflict("\(message) (SQLSTATE \(state))") }
                return StoreError.unavailable("store error: \(message) (SQLSTATE \(state))")
            }
            return StoreError.unavailable("store unreachable: \(String(reflecting: error.code))")
        }
        return StoreError.unavailable("store unreachable: \(error)")
    }
}

/// Runs `operation` but answers within `limit`: the connection pool queues requests while
/// the server is down rather than failing them, and a caller (a console page, the change
/// feed) must get `unavailable` in bounded time instead.
enum Deadline {
    static func run<T: Sendable>(
        _ limit: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let race = Race<T>()
        let message = "store unreachable: \(what) took longer than \(limit)"
        let work = Task { try await operation() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.start(continuation)
                let timer = Task {
                    try? await Task.sleep(for: limit)
                    if Task.isCancelled { return }
                    race.finish(.failure(StoreError.unavailable(message)))
                    work.cancel()
                }
                Task {
                    let result = await work.result
                    timer.cancel()
                    race.finish(result)
                }
            }
        } onCancel: {
            work.cancel()
        }
    }

    /// Whichever finishes first resumes the caller; the other is ignored.
    final class Race<T: Sendable>: Sendable {
        private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

        func start(_ continuation: CheckedContinuation<T, any Error>) {
            self.continuation.withLock { $0 = continuation }
        }

        func finish(_ result: Result<T, any Error>) {
            let waiting = continuation.withLock { current -> CheckedContinuation<T, any Error>? in
                defer { current = nil }
                return current
            }
            waiting?.resume(with: result)
        }
    }
}

extension PostgresEndpoint {
    /// From `store.url` as the configuration parsed it.
    public init(_ url: PostgresURL) {
        let tls: TLSMode
        switch url.sslMode {
        case .disable: tls = .disable
        case .require: tls = .require
        case .verifyFull: tls = .verifyFull
        }
        self.init(host: url.host, port: url.port, user: url.user, password: url.password, database: url.database, tls: tls)
    }
}
