import Foundation

/// `postgres://USER[:PASS]@HOST[:PORT]/DB?sslmode=disable|require|verify-full` (SPEC §10.2),
/// split into what a connection needs. Parsed by hand rather than with `URLComponents`, which
/// accepts some malformed authorities silently; every problem is a sentence for `check`.
public struct PostgresURL: Sendable, Equatable {
    public enum SSLMode: String, Sendable, CaseIterable {
        /// No TLS.
        case disable
        /// TLS, certificate not verified (libpq's meaning of `require`).
        case require
        /// TLS, certificate chain and host name verified against the system's trust store.
        case verifyFull = "verify-full"
    }

    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode

    public init(user: String, password: String?, host: String, port: Int, database: String, sslMode: SSLMode) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.sslMode = sslMode
    }

    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// The URL without its password, for messages and `actas instances`.
    public var redacted: String {
        "postgres://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }

    public static func parse(_ text: String) -> Result<PostgresURL, ConfigValueError> {
        func failure(_ message: String) -> Result<PostgresURL, ConfigValueError> { .failure(ConfigValueError(message)) }
        guard let schemeEnd = text.range(of: "://"), isPostgres(text) else {
            return failure("must start with \"postgres://\"")
        }
        var rest = Substring(text[schemeEnd.upperBound...])
        var query = ""
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = rest[..<mark]
        }
        if rest.contains("#") { return failure("a fragment (#…) is not allowed in a PostgreSQL URL") }
        guard let slash = rest.firstIndex(of: "/") else { return failure("needs a database name: postgres://USER@HOST:PORT/DB") }
        let authority = rest[..<slash]
        guard let database = String(rest[rest.index(after: slash)...]).removingPercentEncoding, !database.isEmpty,
              !database.contains("/") else {
            return failure("needs a database name: postgres://USER@HOST:PORT/DB")
        }
        guard let at = authority.lastIndex(of: "@") else { return failure("needs a user name: postgres://USER@HOST:PORT/DB") }
        let credentials = authority[..<at]
        let hostPort = authority[authority.index(after: at)...]
        let userPart: Substring
        var password: String?
        if let colon = credentials.firstIndex(of: ":") {
            userPart = credentials[..<colon]
            guard let decoded = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding else {
                return failure("the password is not valid percent-encoding")
            }
            password = decoded
        } else {
            userPart = credentials
        }
        guard let user = String(userPart).removingPercentEncoding, !user.isEmpty else {
            return failure("needs a user name: postgres://USER@HOST:PORT/DB")
        }
        var host: String
        var portText = ""
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return failure("an IPv6 host needs a closing ]") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return failure("unexpected text after the IPv6 host") }
                portText = String(after.dropFirst())
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            portText = String(hostPort[hostPort.index(after: colon)...])
        } else {
            host = String(hostPort)
        }
        if host.isEmpty { return failure("needs a host: postgres://USER@HOST:PORT/DB") }
        if host.contains(where: { $0.isWhitespace || $0 == "%" }) { return failure("the host \"\(host)\" is not a host name or address") }
        var port = 5432
        if !portText.isEmpty {
            guard portText.allSatisfy(\.isASCII), let parsed = Int(portText), (1...65535).contains(parsed) else {
                return failure("the port \"\(portText)\" is not a number from 1 to 65535")
            }
            port = parsed
        }
        var sslMode = SSLMode.disable
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            let value = parts.count > 1 ? String(parts[1]) : ""
            switch name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    return failure("sslmode must be one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(value)\"")
                }
                sslMode = mode
            default:
                return failure("unknown parameter \"\(name)\" (only sslmode is supported)")
            }
        }
        return .success(PostgresURL(user: user, password: password, host: host, port: port, database: database, sslMode: sslMode))
    }
}
