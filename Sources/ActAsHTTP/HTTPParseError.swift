/// Why a message was refused, and the status code a client gets for it.
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var reason: String

    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status): \(reason)" }

    public static func badRequest(_ reason: String) -> Self { .init(status: 400, reason: reason) }
    /// An upstream response we cannot frame or trust; the client gets 502.
    public static func badResponse(_ reason: String) -> Self { .init(status: 502, reason: reason) }
    public static let uriTooLong = Self(status: 414, reason: "request line too long")
    public static let headersTooLarge = Self(status: 431, reason: "header section too large")
    public static let tooManyHeaders = Self(status: 431, reason: "too many header fields")
    public static let bodyTooLarge = Self(status: 413, reason: "body larger than max_body")
    public static let versionNotSupported = Self(status: 505, reason: "HTTP version not supported")
    public static let notImplemented = Self(status: 501, reason: "unknown method")
    public static let expectationFailed = Self(status: 417, reason: "unsupported Expect value")
}
