import ActAsCore
import NIOCore

/// What a log line is about (SPEC §8 `type`).
public enum AuditEventType: String, Sendable, CaseIterable {
    case request
    case login
    case loginFailed = "login_failed"
    case logout
    case consentGranted = "consent_granted"
    case consentRevoked = "consent_revoked"
    case consentExpired = "consent_expired"
    case impersonationStarted = "impersonation_started"
    case impersonationDenied = "impersonation_denied"
    /// Carries `end_reason`.
    case impersonationEnded = "impersonation_ended"
    /// Carries `reason` (a refusal code such as `read_only` or `hidden_path`).
    case requestDenied = "request_denied"
}

/// One request header as received; the writer redacts it (`redact_headers`, cookies, tokens).
public struct AuditHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A request body as captured by the proxy. The writer turns it into a redacted JSON value or into
/// `{"unparsed":true,"bytes":N,"content_type":…}`; the raw bytes are never written.
public struct AuditCapturedBody: Sendable {
    /// The first bytes of the body (the proxy captures up to `body_capture_bytes`).
    public var bytes: ByteBuffer
    /// The body's full length on the wire; larger than `bytes` when the capture was cut short.
    public var totalBytes: Int64
    public var contentType: String?
    public var contentEncoding: String?

    public init(bytes: ByteBuffer, totalBytes: Int64? = nil, contentType: String?, contentEncoding: String? = nil) {
        self.bytes = bytes
        self.totalBytes = totalBytes ?? Int64(bytes.readableBytes)
        self.contentType = contentType
        self.contentEncoding = contentEncoding
    }

    public init(bytes: [UInt8], totalBytes: Int64? = nil, contentType: String?, contentEncoding: String? = nil) {
        self.init(
            bytes: ByteBuffer(bytes: bytes), totalBytes: totalBytes, contentType: contentType,
            contentEncoding: contentEncoding)
    }
}

/// An additional member for fields this type does not name. Written after the named fields, in
/// the given order; a key that collides with a named field is written as `x_<key>`.
public struct AuditField: Sendable, Equatable {
    public var key: String
    public var value: AuditValue

    public init(_ key: String, _ value: AuditValue) {
        self.key = key
        self.value = value
    }
}

/// What the proxy gathers about one exchange for its `request` record, as it goes (SPEC §8).
/// A plain request's record is encoded from these directly on the event loop
/// (`EncodedAuditRecords.appendRequest`), without an `AuditRecord`.
public struct AuditRequestFields: Sendable {
    public var method: String?
    /// The path as forwarded (normalised while impersonating), without the query.
    public var path: String?
    /// The raw query, without `?`; logged when not empty.
    public var query: String?
    public var upstreamNanoseconds: Int64?
    public var bytesIn: Int64 = 0
    public var bytesOut: Int64 = 0
    public var user: String?
    public var impersonator: String?
    public var sessionID: String?
    public var mode: ImpersonationMode?
    public var clientRequestID: String?
    /// The client's protocol: `http/1.1` or `h2` (SPEC §10.4).
    public var proto: String?

    public init(method: String? = nil, path: String? = nil, query: String? = nil, proto: String? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.proto = proto
    }
}

/// One record of the request log: an event, or an impersonated request with its captured
/// headers and body (plain stored values); the writer redacts, encodes, numbers and chains it.
///
/// Fields left nil are omitted from the line (never written as `null`): a login has no `status`,
/// a request of a signed-out visitor has no `user`. Key order is fixed (SPEC §8): `ts`, `seq`,
/// `type`, the request fields in the order of the SPEC example, the event fields below, `extra`,
/// then `prev` and `hash`.
///
/// Every free-text string is scanned for JWTs, `Bearer …` and `actas_…` tokens and escaped.
public struct AuditRecord: Sendable {
    public var type: AuditEventType
    /// When it happened (for requests: when the response was complete or the request refused).
    public var timestamp: AuditTimestamp

    // Request fields, in SPEC order.
    /// The proxy's own `X-Request-Id`.
    public var requestID: String?
    public var clientIP: String?
    public var method: String?
    /// The normalised path (without the query).
    public var path: String?
    /// The raw query string, without `?`. Logged as an object `name → value` (repeated names →
    /// array of values), names and values percent-decoded with `+` as space, values of names
    /// containing a redact key replaced by `[REDACTED]`.
    public var query: String?
    public var status: Int?
    /// Logged as `duration_ms` (milliseconds, up to three decimals).
    public var durationNanoseconds: Int64?
    /// Logged as `upstream_ms`.
    public var upstreamNanoseconds: Int64?
    public var bytesIn: Int64?
    public var bytesOut: Int64?
    /// The effective user's username (the target while impersonating).
    public var user: String?
    /// The administrator's username while impersonating.
    public var impersonator: String?
    /// The impersonation session id (`imp_…`).
    public var sessionID: String?
    public var mode: ImpersonationMode?
    /// `http/1.1` or `h2`: the protocol the client spoke (requests only).
    public var proto: String?
    /// Logged as an object `lower-cased name → value` (repeated names → array).
    public var requestHeaders: [AuditHeader]?
    public var requestBody: AuditCapturedBody?

    // Event fields.
    /// The client's own `X-Request-Id`, if it sent one.
    public var clientRequestID: String?
    /// A refusal code (`request_denied`, `impersonation_denied`, `login_failed`).
    public var reason: String?
    public var endReason: EndReason?
    /// Who did it, when that is not `user`/`impersonator` (e.g. `operator` for CLI changes).
    public var actor: String?
    /// Whom an action was aimed at when no session exists (e.g. a denied impersonation's target
    /// as typed, or the username of a failed login).
    public var target: String?
    /// The administrator's stated reason for impersonating (SPEC §4 form field `reason`).
    public var justification: String?
    /// `password`, `oidc`, `token`, `mtls`.
    public var authMethod: String?
    /// End of an impersonation session or consent.
    public var expiresAt: AuditTimestamp?
    /// A short human-readable explanation (e.g. an upstream error).
    public var detail: String?
    /// Anything else, written after the named fields.
    public var extra: [AuditField]

    public init(
        type: AuditEventType, timestamp: AuditTimestamp = .now(),
        requestID: String? = nil, clientIP: String? = nil, method: String? = nil, path: String? = nil,
        query: String? = nil, status: Int? = nil, durationNanoseconds: Int64? = nil,
        upstreamNanoseconds: Int64? = nil, bytesIn: Int64? = nil, bytesOut: Int64? = nil,
        user: String? = nil, impersonator: String? = nil, sessionID: String? = nil, mode: ImpersonationMode? = nil,
        proto: String? = nil, requestHeaders: [AuditHeader]? = nil, requestBody: AuditCapturedBody? = nil,
        clientRequestID: String? = nil, reason: String? = nil, endReason: EndReason? = nil,
        actor: String? = nil, target: String? = nil, justification: String? = nil, authMethod: String? = nil,
        expiresAt: AuditTimestamp? = nil, detail: String? = nil, extra: [AuditField] = []
    ) {
        self.type = type
        self.timestamp = timestamp
        self.requestID = requestID
        self.clientIP = clientIP
        self.method = method
        self.path = path
        self.query = query
        self.status = status
        self.durationNanoseconds = durationNanoseconds
        self.upstreamNanoseconds = upstreamNanoseconds
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.user = user
        self.impersonator = impersonator
        self.sessionID = sessionID
        self.mode = mode
        self.proto = proto
        self.requestHeaders = requestHeaders
        self.requestBody = requestBody
        self.clientRequestID = clientRequestID
        self.reason = reason
        self.endReason = endReason
        self.actor = actor
        self.target = target
        self.justification = justification
        self.authMethod = authMethod
        self.expiresAt = expiresAt
        self.detail = detail
        self.extra = extra
    }

    /// A `request` record from what the proxy gathered; `headers` and `body` only while impersonating.
    public init(
        request fields: AuditRequestFields, timestamp: AuditTimestamp = .now(), requestID: RequestID, clientIP: String,
        status: Int, durationNanoseconds: Int64, detail: String?, headers: [AuditHeader]? = nil,
        body: AuditCapturedBody? = nil
    ) {
        self.init(
            type: .request, timestamp: timestamp, requestID: requestID.string, clientIP: clientIP, method: fields.method,
            path: fields.path, query: fields.query?.isEmpty == false ? fields.query : nil, status: status,
            durationNanoseconds: durationNanoseconds, upstreamNanoseconds: fields.upstreamNanoseconds,
            bytesIn: fields.bytesIn, bytesOut: fields.bytesOut, user: fields.user, impersonator: fields.impersonator,
            sessionID: fields.sessionID, mode: fields.mode, proto: fields.proto, requestHeaders: headers, requestBody: body,
            clientRequestID: fields.clientRequestID, detail: detail)
    }

    /// Every key a record can have, in the order they are written.
    public static let keyOrder: [String] = [
        "ts", "seq", "type", "request_id", "client_ip", "method", "path", "query", "status", "duration_ms",
        "upstream_ms", "bytes_in", "bytes_out", "user", "impersonator", "session_id", "mode", "proto", "request_headers",
        "request_body", "client_request_id", "reason", "end_reason", "actor", "target", "justification",
        "auth_method", "expires_at", "detail", "instance", "prev", "hash",
    ]
}
