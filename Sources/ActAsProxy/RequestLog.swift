import ActAsAudit
import ActAsCore
import ActAsHTTP
import NIOCore

/// The protocol a client speaks to the proxy, as logged (SPEC §10.4 `proto`).
enum ClientProtocol: String, Sendable {
    case http1 = "http/1.1"
    case h2
}

/// What the request log needs to know about one exchange, gathered as it goes and turned into
/// one `request` record when it completes (SPEC §8). Plain values only: the loop encodes a
/// plain request's record (`LoopContext.log`), the audit writer's thread an impersonated one,
/// and the writer alone numbers and chains.
struct ExchangeLog {
    var fields: AuditRequestFields
    /// While impersonating: the request's headers and the first `body_capture_bytes` of its
    /// body (redacted by the writer), and the record must be durable before the response ends.
    var headers: [AuditHeader]?
    var capture: ByteBuffer?
    var captureLimit = 0
    var contentType: String?
    var contentEncoding: String?
    var upstreamStarted: NIODeadline?
    /// A note for the record's `detail` (e.g. the names of request trailers dropped).
    var detail: String?

    /// Adds a note to `detail`; one already there (a refusal's reason) stays first.
    mutating func addDetail(_ note: String) {
        detail = detail.map { $0 + "; " + note } ?? note
    }

    init(method: String, path: String? = nil, query: String? = nil, proto: ClientProtocol) {
        fields = AuditRequestFields(method: method, path: path, query: query, proto: proto.rawValue)
    }

    /// SPEC §8, every request: one the HTTP parser refused, with what could be read of its
    /// request line (the target split at `?` as written; the writer escapes every byte).
    init(refused inbound: ByteBuffer, proto: ClientProtocol) {
        let (method, target) = RequestSanitizer.sketchRequestLine(inbound)
        fields = AuditRequestFields(method: method, proto: proto.rawValue)
        guard let target else { return }
        if let mark = target.firstIndex(of: "?") {
            fields.path = String(target[..<mark])
            fields.query = String(target[target.index(after: mark)...])
        } else {
            fields.path = target
        }
    }

    var durable: Bool { fields.sessionID != nil }

    /// What the writer thread must redact (headers, a body): an impersonated exchange.
    var hasCapture: Bool { headers != nil || capture != nil }

    /// Counts request body bytes, keeping the first `captureLimit` of them while impersonating.
    mutating func requestBody(_ slice: ByteBuffer) {
        fields.bytesIn += Int64(slice.readableBytes)
        guard var capture, capture.readableBytes < captureLimit else { return }
        self.capture = nil  // keep the buffer uniquely referenced while it grows
        let take = min(slice.readableBytes, captureLimit - capture.readableBytes)
        var part = slice.getSlice(at: slice.readerIndex, length: take)!
        capture.writeBuffer(&part)
        self.capture = capture
    }

    func record(requestID: RequestID, clientIP: String, status: Int, duration: Int64, detail: String? = nil) -> AuditRecord {
        AuditRecord(
            request: fields, requestID: requestID, clientIP: clientIP, status: status, durationNanoseconds: duration,
            detail: detail ?? self.detail, headers: headers,
            body: capture.flatMap { $0.readableBytes > 0 || fields.bytesIn > 0 ? AuditCapturedBody(
                bytes: $0, totalBytes: fields.bytesIn, contentType: contentType, contentEncoding: contentEncoding) : nil })
    }

    /// Body types the redactor can parse; other bodies are only counted.
    static func capturable(_ contentType: String?) -> Bool {
        guard let type = contentType?.lowercased() else { return false }
        return type.hasPrefix("application/x-www-form-urlencoded") || type.hasPrefix("multipart/form-data")
            || type.hasPrefix("application/json") || (type.hasPrefix("application/") && type.contains("+json"))
    }
}
