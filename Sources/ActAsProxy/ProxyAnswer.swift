import ActAsCore
import ActAsHTTP
import ActAsPages

/// Every answer the proxy gives by itself (not the application's, not the console's): status,
/// error code and sentence in one catalogue, as `Refusals` is for the impersonation policy.
/// `ErrorResponse` renders them (JSON for programs, a page for browsers); the handler adds what
/// belongs to the exchange (request id, HSTS, restored cookies, `Connection: close`).
struct ProxyAnswer: Equatable, Sendable {
    var status: Int
    var code: String
    var message: String
    /// The connection is closed after the answer (the framing can no longer be trusted).
    var close: Bool
    /// Full header lines, each ending in CRLF.
    var extraHeaders: String = ""
    /// Appended to the JSON object (`,"name":value`).
    var extraJSON: String = ""

    // MARK: sanitize

    /// The codec refused the head (`400`, `413`, `414`, `417`, `431`, `505`).
    static func malformedHead(_ error: HTTPParseError) -> ProxyAnswer {
        let message: String
        switch error.status {
        case 400: message = "The request is malformed: \(error.reason)."
        case 413: message = "The request body is larger than the proxy accepts."
        case 414: message = "The request line is too long."
        case 431: message = "The request headers are too large or too many."
        case 505: message = "Only HTTP/1.0 and HTTP/1.1 are supported here."
        case 417: message = "Only \"Expect: 100-continue\" is supported."
        default: message = error.reason
        }
        return ProxyAnswer(status: error.status, code: ErrorResponse.code(forStatus: error.status), message: message, close: true)
    }

    /// The codec refused the body.
    static func malformedBody(_ error: HTTPParseError) -> ProxyAnswer {
        let message = error.status == 413 ? "The request body is larger than the proxy accepts." : "The request body is malformed: \(error.reason)."
        return ProxyAnswer(status: error.status, code: ErrorResponse.code(forStatus: error.status), message: message, close: true)
    }

    /// CONNECT and TRACE. `close`: a body was announced, which is not read.
    static func methodNotAllowed(_ method: String, close: Bool) -> ProxyAnswer {
        ProxyAnswer(status: 405, code: "method_not_allowed", message: "\(method) is not allowed through this proxy.", close: close,
                    extraHeaders: "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n")
    }

    static func invalidTarget(_ reason: String) -> ProxyAnswer {
        ProxyAnswer(status: 400, code: "bad_request", message: "The request target is not valid: \(reason).", close: true)
    }

    static let invalidHost = ProxyAnswer(status: 400, code: "bad_request", message: "The request's host is not a valid host name.", close: true)

    static let misdirected = ProxyAnswer(status: 421, code: "misdirected_request", message: "This server does not serve that host name.", close: false)

    static let impersonationHeader = ProxyAnswer(
        status: 403, code: "impersonation_header",
        message: "Impersonate-* request headers are not accepted; administrators act as others through the ActAs console.", close: false)

    // MARK: authenticate

    static let invalidToken = ProxyAnswer(
        status: 401, code: "invalid_token", message: "The API token is not valid (unknown, revoked, or its user cannot sign in).", close: false,
        extraHeaders: "WWW-Authenticate: Bearer realm=\"actas\", error=\"invalid_token\"\r\n")

    static let storeUnavailable = ProxyAnswer(
        status: 503, code: "store_unavailable", message: "ActAs cannot reach its store right now. Try again in a moment.", close: false)

    /// SPEC §4: browsers are sent to sign in and come back to `originForm`.
    static func signIn(returningTo originForm: String) -> ProxyAnswer {
        ProxyAnswer(status: 302, code: "unauthenticated", message: "Sign in to continue.", close: false,
                    extraHeaders: "Location: /.actas/login?rd=\(FormCoding.encode(originForm))\r\n")
    }

    static let unauthenticated = ProxyAnswer(
        status: 401, code: "unauthenticated", message: "Sign in first, or send an API token (Authorization: Bearer actas_…).", close: false,
        extraHeaders: "WWW-Authenticate: Bearer realm=\"actas\"\r\n")

    static let webSocketCrossSite = ProxyAnswer(
        status: 403, code: "csrf", message: "A WebSocket authenticated by the session cookie must come from this site.", close: false)

    static let consoleBodyTooLarge = ProxyAnswer(status: 413, code: "body_too_large", message: "Console requests are limited to 1 MB.", close: true)

    // MARK: impersonation gate

    static func refusal(_ refusal: RequestRefusal) -> ProxyAnswer {
        ProxyAnswer(status: refusal.httpStatus, code: refusal.code, message: refusal.sentence, close: false)
    }

    /// Before forwarding while impersonating; after the response, with `close` (SPEC §8).
    static func auditUnavailable(close: Bool) -> ProxyAnswer {
        ProxyAnswer(status: 503, code: "audit_unavailable",
                    message: "The request log cannot be written, so requests made while acting as another user are refused.", close: close)
    }

    /// SPEC §7: the first navigation after an announced end goes to the page that says why.
    static func impersonationEndedPage(sessionID: String, reason: EndReason) -> ProxyAnswer {
        ProxyAnswer(status: 303, code: "impersonation_ended", message: reason.sentence, close: false,
                    extraHeaders: "Location: /.actas/ended?id=\(sessionID)\r\n")
    }

    /// SPEC §7: anything else after an announced end.
    static func impersonationEnded(_ reason: EndReason) -> ProxyAnswer {
        ProxyAnswer(status: 403, code: "impersonation_ended", message: "Your session acting as another user has ended: \(reason.sentence)",
                    close: false, extraJSON: ",\"end_reason\":\"\(reason.rawValue)\"")
    }

    /// The session ended while the request waited for an upstream connection.
    static let impersonationEndedBeforeForwarding = ProxyAnswer(
        status: 403, code: "impersonation_ended", message: "Your session acting as another user has ended.", close: false)

    // MARK: upstream

    static let upstreamUnreachable = ProxyAnswer(status: 502, code: "upstream_unreachable", message: "The application server could not be reached.", close: false)
    static let upstreamUnsafeResponse = ProxyAnswer(
        status: 502, code: "bad_upstream_response", message: "The application server sent a response the proxy cannot forward safely.", close: false)
    static let upstreamUnaskedSwitch = ProxyAnswer(
        status: 502, code: "bad_upstream_response", message: "The application server switched protocols without being asked to.", close: false)
    static let upstreamBadWebSocketAccept = ProxyAnswer(
        status: 502, code: "bad_upstream_response", message: "The application server's WebSocket handshake answer is not valid.", close: false)
    static let upstreamClosedSilently = ProxyAnswer(
        status: 502, code: "upstream_closed", message: "The application server closed the connection without answering.", close: false)
    static let upstreamClosedMidResponse = ProxyAnswer(
        status: 502, code: "bad_upstream_response", message: "The application server closed the connection in the middle of its answer.", close: false)
    static let upstreamTimeout = ProxyAnswer(status: 504, code: "upstream_timeout", message: "The application server did not answer in time.", close: false)

    // MARK: timers

    static let headTimeout = ProxyAnswer(status: 408, code: "header_timeout", message: "The request head did not arrive in time.", close: true)
    static let bodyTimeout = ProxyAnswer(status: 408, code: "body_timeout", message: "The request body did not arrive in time.", close: true)
}
