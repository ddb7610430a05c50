import ActAsConfig
import ActAsCore
import ActAsSessions
import ActAsStore
import Foundation

/// Where the console answers: every path under `/.actas/`, and the JWKS.
public enum ConsoleRoutes {
    public static let prefix = "/.actas/"
    public static let jwksPath = "/.well-known/actas/jwks.json"
}

/// The console as the data path sees it: requests for its routes are handed over whole, its
/// impersonation lifecycle and event sink are shared, and a reload reaches it. The proxy
/// depends on this, not on the console's pages.
public protocol ConsoleEndpoint: Sendable {
    var impersonations: Impersonations { get }
    var events: any AuditSink { get }
    func handle(_ request: ConsoleRequest) async -> ConsoleResponse
    /// SIGHUP: the new policy for every decision from now on (see `Console.apply`).
    func apply(config: ActAsConfig, now: Date) -> Impersonations.PolicyReloadOutcome
}

/// A request for the console (`/.actas/…`, the JWKS), as the proxy hands it over: the head
/// already parsed and the (small) body read. The proxy resolved who is asking.
public struct ConsoleRequest: Sendable {
    public enum Authentication: Sendable, Equatable {
        case none
        case session
        case token
    }

    public var method: String
    public var path: String
    /// Raw query string without `?`.
    public var query: String
    /// Lower-case names, values as sent, in order.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var clientIP: String
    public var requestID: String
    public var principal: LiveState.Principal?
    public var authentication: Authentication
    public var now: Date
    /// Fields of an `application/x-www-form-urlencoded` body (empty for other bodies).
    public let formFields: [(String, String)]

    public init(
        method: String, path: String, query: String, headers: [(name: String, value: String)], body: [UInt8],
        clientIP: String, requestID: String, principal: LiveState.Principal?, authentication: Authentication, now: Date = Date()
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.clientIP = clientIP
        self.requestID = requestID
        self.principal = principal
        self.authentication = authentication
        self.now = now
        // Decoded once: handlers ask for several fields.
        let isForm = headers.first { $0.name == "content-type" }?.value.lowercased().hasPrefix("application/x-www-form-urlencoded") ?? false
        self.formFields = isForm ? FormCoding.decode(String(decoding: body, as: UTF8.self)) : []
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// `Accept` mentions text/html: a person with a browser, who gets pages and redirects.
    public var wantsHTML: Bool {
        header("accept")?.lowercased().contains("text/html") ?? false
    }

    public var queryItems: [(String, String)] { FormCoding.decode(query) }

    public func queryValue(_ name: String) -> String? {
        queryItems.first { $0.0 == name }?.1
    }

    /// Cookies sent by the browser, by name (first occurrence wins).
    public func cookie(_ name: String) -> String? {
        for (headerName, value) in headers where headerName == "cookie" {
            for pair in value.split(separator: ";") {
                let trimmed = pair.trimmingCharacters(in: .whitespaces)
                if let eq = trimmed.firstIndex(of: "="), trimmed[..<eq] == name {
                    return String(trimmed[trimmed.index(after: eq)...])
                }
            }
        }
        return nil
    }

    public func formValue(_ name: String) -> String? {
        formFields.first { $0.0 == name }?.1
    }

    /// The JSON object in the body, if that is what it is.
    public var jsonBody: [String: Any]? {
        guard !body.isEmpty else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }
}

public struct ConsoleResponse: Sendable {
    public var status: Int
    /// Full header lines are written by the proxy; names here as they should appear.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// A streamed answer (Server-Sent Events): the proxy writes `headers`, then each piece as it
    /// comes (chunked), and closes the connection when the stream finishes. Cancelling the
    /// iteration (the client left, the connection was cut) is how the console hears of it.
    public var stream: AsyncStream<[UInt8]>?

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = [], stream: AsyncStream<[UInt8]>? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Console pages may not be framed, cached, sniffed or leak their URL.
    package static let securityHeaders: [(name: String, value: String)] = [
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        // Not no-referrer: under it browsers send `Origin: null` on form posts, hiding the
        // very same-origin evidence CSRF checks need.
        ("Referrer-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
    ]

    package static func html(_ status: Int, _ page: String, headers: [(name: String, value: String)] = []) -> ConsoleResponse {
        ConsoleResponse(status: status, headers: [("Content-Type", "text/html; charset=utf-8")] + securityHeaders + headers, body: Array(page.utf8))
    }

    /// `text/event-stream` (SPEC §10.5): not cached, not buffered by proxies in between.
    package static func eventStream(_ stream: AsyncStream<[UInt8]>) -> ConsoleResponse {
        ConsoleResponse(
            status: 200,
            headers: [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"),
                      ("X-Content-Type-Options", "nosniff")],
            stream: stream)
    }

    package static func redirect(_ status: Int, to location: String, headers: [(name: String, value: String)] = []) -> ConsoleResponse {
        ConsoleResponse(status: status, headers: [("Location", location), ("Content-Type", "text/plain; charset=utf-8")] + securityHeaders + headers,
                        body: Array("see \(location)\n".utf8))
    }

    package static func asset(_ contentType: String, _ text: String) -> ConsoleResponse {
        ConsoleResponse(status: 200, headers: [("Content-Type", contentType), ("Cache-Control", "public, max-age=300"), ("X-Content-Type-Options", "nosniff")],
                        body: Array(text.utf8))
    }
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5): `+` is a space, `%XX` a byte.
public enum FormCoding {
    public static func decode(_ text: String) -> [(String, String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (percentDecode(parts[0]), parts.count > 1 ? percentDecode(parts[1]) : "")
        }
    }

    package static func percentDecode(_ text: Substring) -> String {
        PercentEncoding.decodeString(Array(text.utf8), plusAsSpace: true)
    }

    /// For a query parameter value: everything but unreserved characters escaped.
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
