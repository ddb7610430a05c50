import Foundation
import NIOCore
import NIOPosix

/// Tells running instances to apply the store's change feed now and waits for each to confirm
/// (SPEC §10.1). SQLite has no cross-process notification, so the admin listener's
/// `POST /sync?change=N` is the wake-up; with PostgreSQL, LISTEN/NOTIFY can wake the feed, and
/// this confirmation (an instance saying which change it has applied) stays the same.
public enum InstanceNotifier {
    public enum Outcome: Sendable, Equatable {
        case confirmed(Int64)
        /// Its admin address refused the connection: nothing listens there, so the instance is
        /// not running and has nothing to enforce. Anything else (a timeout above all) may be a
        /// live instance still enforcing the old state, so it is `failed`.
        case notRunning(String)
        /// One line: why the instance could not confirm.
        case failed(String)
    }

    /// The SPEC's bound: an instance that has not confirmed after this long is reported.
    public static let defaultTimeout: Duration = .seconds(1)

    /// Calls every instance at once; returns when each has answered or timed out.
    public static func announce(change: Int64, to instances: [InstanceRecord], timeout: Duration = defaultTimeout)
        async -> [(instance: InstanceRecord, outcome: Outcome)]
    {
        await withTaskGroup(of: (Int, Outcome).self) { group in
            for (index, instance) in instances.enumerated() {
                group.addTask { (index, await call(instance, change: change, timeout: timeout)) }
            }
            var outcomes = [Outcome?](repeating: nil, count: instances.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return zip(instances, outcomes).map { ($0, $1 ?? .failed("no answer")) }
        }
    }

    public static func call(_ instance: InstanceRecord, change: Int64, timeout: Duration) async -> Outcome {
        guard !instance.adminAddress.isEmpty else {
            return .failed("it has no admin listener (listen.admin), so it cannot be told; it applies the change at its next poll")
        }
        guard let (host, port) = InstanceRecord.parseAddress(instance.adminAddress) else {
            return .failed("its recorded admin address is not host:port")
        }
        let request = "POST /sync?change=\(change) HTTP/1.1\r\nHost: \(InstanceRecord.address(host: host, port: port))\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        let response: [UInt8]
        do {
            response = try await exchange(host: host, port: port, request: request, timeout: timeout)
        } catch let error as CallError {
            return .failed(error.description)
        } catch where isConnectionRefused(error) {
            return .notRunning("its admin address refuses connections (nothing listens there)")
        } catch {
            return .failed("\(error)")
        }
        guard let ack = SyncAcknowledgement.parse(response: response) else {
            return .failed("answered \(SyncAcknowledgement.statusLine(response: response) ?? "something that is not HTTP")")
        }
        guard ack.instanceID == instance.id else {
            // Another process now listens on that address: the recorded instance is gone.
            return .failed("a different instance (\(ack.instanceID)) answers on its address")
        }
        guard ack.change >= change else { return .failed("it reached change \(ack.change) only") }
        return .confirmed(ack.change)
    }

    /// ECONNREFUSED, directly or as the only kind of failure of every address tried.
    static func isConnectionRefused(_ error: any Error) -> Bool {
        switch error {
        case let error as IOError:
            return error.errnoCode == ECONNREFUSED
        case let error as NIOConnectionError:
            return error.dnsAError == nil && error.dnsAAAAError == nil && !error.connectionErrors.isEmpty
                && error.connectionErrors.allSatisfy { isConnectionRefused($0.error) }
        default:
            return false
        }
    }

    enum CallError: Error, CustomStringConvertible {
        case timedOut(Duration)
        case tooLarge

        var description: String {
            switch self {
            case .timedOut(let timeout): return "no confirmation within \(timeout)"
            case .tooLarge: return "the answer was too large"
            }
        }
    }

    /// One request on a new connection; the answer is everything until the server closes.
    static func exchange(host: String, port: Int, request: String, timeout: Duration) async throws -> [UInt8] {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: [UInt8].self)
        let once = Once()
        let finish: @Sendable (Result<[UInt8], any Error>) -> Void = { result in
            if once.first() { promise.completeWith(result) }
        }
        let amount = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let timer = loop.scheduleTask(in: amount) { finish(.failure(CallError.timedOut(timeout))) }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(amount)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(finish: finish))
                }
            }
        // An address literal (what instances record) is connected to directly, without
        // getaddrinfo on a shared Dispatch thread.
        let literal = try? SocketAddress(ipAddress: host, port: port)
        let connecting = literal.map { bootstrap.connect(to: $0) } ?? bootstrap.connect(host: host, port: port)
        // The outcome is decided on the event loop, beside the timer: had the connection's
        // failure waited for this task to resume, a busy cooperative pool (seen in a loaded test
        // run) could let the timer win and report a refused port as a silent one.
        connecting.whenComplete { result in
            switch result {
            case .failure(let error):
                finish(.failure(error))
            case .success(let channel):
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                channel.writeAndFlush(channel.allocator.buffer(string: request)).whenFailure { finish(.failure($0)) }
            }
        }
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }
}

/// Collects a response until the server closes the connection (the request said close).
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    static let limit = 64 * 1024

    private let finish: @Sendable (Result<[UInt8], any Error>) -> Void
    private var bytes: [UInt8] = []

    init(finish: @escaping @Sendable (Result<[UInt8], any Error>) -> Void) {
        self.finish = finish
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytes.append(contentsOf: buffer.readableBytesView)
        if bytes.count > Self.limit {
            finish(.failure(InstanceNotifier.CallError.tooLarge))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.success(bytes))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }
}

/// True exactly once: a call's promise is completed by whichever of answer, error and timer
/// comes first.
private final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false

    func first() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if done { return false }
        done = true
        return true
    }
}
