#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// An incremental, strict parser for an HTTP/1.1 head: a request line or status line, then
/// header fields, then an empty line (RFC 9112 §2–§5). It is fed the same growing buffer
/// again and again (reader index at the first byte of the head) and resumes at the first
/// line it has not finished, so every byte is validated once.
///
/// Strict means: CRLF only (no bare CR or LF), no obs-fold, no whitespace before the colon,
/// token characters only in names and methods, no control characters (but HTAB) in values,
/// visible ASCII only in the request target.
public struct HeadParser: Sendable {
    public enum Kind: Sendable {
        case request
        case response
        /// The trailer section after a last chunk: fields only.
        case trailers
    }

    public let kind: Kind
    public var limits: HTTPLimits

    @usableFromInline var lineStart = 0
    @usableFromInline var searchFrom = 0
    @usableFromInline var startLineDone: Bool
    @usableFromInline var fields: [HeaderField] = []

    // Start line, as offsets.
    @usableFromInline var methodOrVersionRange = 0..<0
    @usableFromInline var targetOrStatusRange = 0..<0
    @usableFromInline var reasonRange = 0..<0
    @usableFromInline var version: HTTPVersion = .http1_1
    @usableFromInline var method: HTTPMethod = .other
    @usableFromInline var status = 0

    /// Clients may send empty lines before a request (RFC 9112 §2.2); we skip a few.
    private static let maxLeadingEmptyLines = 4
    private var leadingEmptyLines = 0

    public init(kind: Kind, limits: HTTPLimits = HTTPLimits()) {
        self.kind = kind
        self.limits = limits
        self.startLineDone = kind == .trailers
        self.fields.reserveCapacity(16)
    }

    public mutating func reset() {
        lineStart = 0
        searchFrom = 0
        startLineDone = kind == .trailers
        leadingEmptyLines = 0
        fields.removeAll(keepingCapacity: true)
    }

    /// Whether any byte of a head has been seen since the last reset.
    public var hasStarted: Bool { searchFrom > 0 }

    /// Parses what `buffer` holds. Returns the length of the whole head (blank line included)
    /// once it is complete, `nil` while more bytes are needed.
    public mutating func parse(_ buffer: ByteBuffer) throws(HTTPParseError) -> Int? {
        let result = buffer.withUnsafeReadableBytes { raw in self.parse(raw) }
        return try result.get()
    }

    @usableFromInline
    mutating func parse(_ raw: UnsafeRawBufferPointer) -> Result<Int?, HTTPParseError> {
        let end = raw.count
        while true {
            guard let lf = Self.findLineFeed(raw, from: searchFrom, to: end) else {
                searchFrom = end
                if !startLineDone && kind == .request && end - lineStart > limits.maxRequestLine {
                    return .failure(.uriTooLong)
                }
                if end > limits.maxHeaderBytes { return .failure(.headersTooLarge) }
                // Refuse a bad line as soon as its bytes show it, not only at its end: a
                // hostile client should not hold a connection open with garbage.
                if let error = validatePartialLine(raw, lineStart, end) { return .failure(error) }
                return .success(nil)
            }
            let next = lf + 1
            searchFrom = next
            guard lf > lineStart, raw[lf - 1] == ASCII.cr else {
                return .failure(.badRequestOrResponse(kind, "bare LF"))
            }
            let lineEnd = lf - 1

            if !startLineDone {
                if lineEnd == lineStart {
                    guard kind == .request, leadingEmptyLines < Self.maxLeadingEmptyLines else {
                        return .failure(.badRequestOrResponse(kind, "empty start line"))
                    }
                    leadingEmptyLines += 1
                    lineStart = next
                    continue
                }
                if kind == .request && lineEnd - lineStart > limits.maxRequestLine {
                    return .failure(.uriTooLong)
                }
                if next > limits.maxHeaderBytes { return .failure(.headersTooLarge) }
                let started = kind == .request
                    ? parseRequestLine(raw, lineStart, lineEnd)
                    : parseStatusLine(raw, lineStart, lineEnd)
                if let error = started { return .failure(error) }
                startLineDone = true
            } else if lineEnd == lineStart {
                if next > limits.maxHeaderBytes { return .failure(.headersTooLarge) }
                return .success(next)
            } else {
                if next > limits.maxHeaderBytes { return .failure(.headersTooLarge) }
                if fields.count >= limits.maxHeaders { return .failure(.tooManyHeaders) }
                if let error = parseField(raw, lineStart, lineEnd) { return .failure(error) }
            }
            lineStart = next
        }
    }

    /// Checks an unfinished line (no LF yet) with the rules its complete form must meet.
    private func validatePartialLine(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> HTTPParseError? {
        guard start < end else { return nil }
        // A CR must be followed by LF; only the very last byte may be a CR still waiting.
        var i = start
        while i < end - 1 {
            if raw[i] == ASCII.cr { return .badRequestOrResponse(kind, "bare CR") }
            i += 1
        }
        if !startLineDone {
            guard kind == .request else { return nil }
            // The same decisions, in the same order, as parseRequestLine makes on a whole line.
            var j = start
            while j < end, isTokenChar(raw[j]) { j += 1 }
            if j == start { return raw[start] == ASCII.cr ? nil : .badRequest("invalid method") }
            if !isKnownMethodPrefix(raw, start, j - start, complete: false) { return .notImplemented }
            guard j < end else { return nil }
            guard raw[j] == ASCII.space else { return .badRequest("invalid method") }
            if !isKnownMethodPrefix(raw, start, j - start, complete: true) { return .notImplemented }
            guard j < end, raw[j] == ASCII.space else { return nil }
            j += 1
            // CONNECT takes authority-form (any host:port), checked when the line is whole.
            let isConnect = classifyMethod(raw, start, j - 1 - start) == .connect
            if j < end, !isConnect, !isTargetStart(raw[j]) { return .badRequest("invalid request target") }
            while j < end, raw[j] > ASCII.space, raw[j] < 0x7F { j += 1 }
            if j < end, raw[j] != ASCII.space, raw[j] != ASCII.cr { return .badRequest("invalid byte in request target") }
            return nil
        }
        if isOptionalWhitespace(raw[start]) { return .badRequestOrResponse(kind, "obsolete line folding") }
        var j = start
        while j < end, isTokenChar(raw[j]) { j += 1 }
        guard j < end else { return nil }
        if raw[j] == ASCII.cr { return j == start ? nil : .badRequestOrResponse(kind, "invalid header name") }
        guard raw[j] == ASCII.colon, j > start else { return .badRequestOrResponse(kind, "invalid header name") }
        j += 1
        while j < end {
            if raw[j] != ASCII.cr, !isFieldValueChar(raw[j]) { return .badRequestOrResponse(kind, "invalid byte in header value") }
            j += 1
        }
        return nil
    }

    private func isTokenRange(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        for i in start..<end where !isTokenChar(raw[i]) { return false }
        return end > start
    }

    /// Methods the proxy forwards: RFC 9110 plus WebDAV and friends (the set llhttp knows).
    /// Anything else is answered 501 instead of being passed to an application that may
    /// treat an unknown method as GET.
    static let knownMethods: [[UInt8]] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND",
        "UNBIND", "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE",
        "UNSUBSCRIBE", "PURGE", "MKCALENDAR", "LINK", "UNLINK", "SOURCE", "QUERY", "PRI",
    ].map { Array($0.utf8) }

    /// Whether `raw[start..<start+count]` is a known method (`complete`) or a prefix of one.
    func isKnownMethodPrefix(_ raw: UnsafeRawBufferPointer, _ start: Int, _ count: Int, complete: Bool) -> Bool {
        for method in Self.knownMethods where complete ? method.count == count : method.count >= count {
            var equal = true
            for i in 0..<count where raw[start + i] != method[i] {
                equal = false
                break
            }
            if equal { return true }
        }
        return false
    }

    /// origin-form starts with `/`, asterisk-form is `*`, absolute-form with a scheme letter.
    @inline(__always)
    func isTargetStart(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "/") || byte == UInt8(ascii: "*")
            || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
    }

    @inline(__always)
    static func findLineFeed(_ raw: UnsafeRawBufferPointer, from: Int, to end: Int) -> Int? {
        guard from < end, let base = raw.baseAddress else { return nil }
        guard let found = memchr(base + from, Int32(ASCII.lf), end - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    // MARK: start lines

    private mutating func parseRequestLine(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> HTTPParseError? {
        var i = start
        while i < end && isTokenChar(raw[i]) { i += 1 }
        // Decided in this order so that a line fed byte by byte gets the same answer.
        if i > start, !isKnownMethodPrefix(raw, start, i - start, complete: false) { return .notImplemented }
        guard i > start, i < end, raw[i] == ASCII.space else { return .badRequest("invalid method") }
        methodOrVersionRange = start..<i
        method = classifyMethod(raw, start, i - start)
        if method == .other, !isKnownMethodPrefix(raw, start, i - start, complete: true) { return .notImplemented }

        i += 1
        let targetStart = i
        while i < end, raw[i] > ASCII.space, raw[i] < 0x7F { i += 1 }
        guard i > targetStart, i < end, raw[i] == ASCII.space else {
            return .badRequest(i < end && raw[i] != ASCII.space ? "invalid byte in request target" : "malformed request line")
        }
        targetOrStatusRange = targetStart..<i

        i += 1
        switch Self.parseVersion(raw, i, end) {
        case .success(let parsed): version = parsed
        case .failure(let error): return error
        }
        return Self.validateTarget(raw, targetOrStatusRange.lowerBound, targetOrStatusRange.upperBound, method: method)
    }

    private mutating func parseStatusLine(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> HTTPParseError? {
        // HTTP-version SP 3DIGIT SP [reason]; a missing reason with its space is tolerated
        // from upstreams, nothing else is.
        guard end - start >= 12, raw[start + 8] == ASCII.space else { return .badResponse("malformed status line") }
        switch Self.parseVersion(raw, start, start + 8) {
        case .success(let parsed): version = parsed
        case .failure: return .badResponse("unsupported response version")
        }
        methodOrVersionRange = start..<(start + 8)
        var code = 0
        for i in (start + 9)..<(start + 12) {
            let byte = raw[i]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return .badResponse("invalid status code") }
            code = code * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard code >= 100, code <= 599 else { return .badResponse("invalid status code") }
        status = code
        targetOrStatusRange = (start + 9)..<(start + 12)
        var i = start + 12
        if i < end {
            guard raw[i] == ASCII.space else { return .badResponse("malformed status line") }
            i += 1
        }
        let reasonStart = i
        while i < end {
            guard isFieldValueChar(raw[i]) else { return .badResponse("invalid reason phrase") }
            i += 1
        }
        reasonRange = reasonStart..<end
        return nil
    }

    /// RFC 9112 §3.2: origin-form (`/…`), absolute-form (`scheme://…`), authority-form
    /// (CONNECT only) or asterisk-form (`*`, OPTIONS only). Nothing else reaches routing.
    static func validateTarget(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int, method: HTTPMethod) -> HTTPParseError? {
        let first = raw[start]
        if first == UInt8(ascii: "/") { return nil }
        if first == UInt8(ascii: "*") {
            return end - start == 1 && method == .options ? nil : .badRequest("asterisk-form is only for OPTIONS")
        }
        if method == .connect { return nil }
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by "://"
        var i = start
        while i < end {
            let byte = raw[i]
            let isAlpha = byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")
            let isSchemeChar = isAlpha || (i > start && (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")))
            if !isSchemeChar { break }
            i += 1
        }
        guard i > start, end - i > 3, raw[i] == UInt8(ascii: ":"), raw[i + 1] == UInt8(ascii: "/"), raw[i + 2] == UInt8(ascii: "/") else {
            return .badRequest("request target must be a path starting with /")
        }
        return nil
    }

    private static func parseVersion(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Result<HTTPVersion, HTTPParseError> {
        let prefix: StaticString = "HTTP/"
        guard end - start == 8 else { return .failure(.badRequest("malformed HTTP version")) }
        for i in 0..<5 where raw[start + i] != prefix.utf8Start[i] {
            return .failure(.badRequest("malformed HTTP version"))
        }
        let major = raw[start + 5], dot = raw[start + 6], minor = raw[start + 7]
        let isDigit: (UInt8) -> Bool = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard isDigit(major), dot == UInt8(ascii: "."), isDigit(minor) else {
            return .failure(.badRequest("malformed HTTP version"))
        }
        guard major == UInt8(ascii: "1") else { return .failure(.versionNotSupported) }
        switch minor {
        case UInt8(ascii: "1"): return .success(.http1_1)
        case UInt8(ascii: "0"): return .success(.http1_0)
        default: return .failure(.versionNotSupported)
        }
    }

    // MARK: fields

    private mutating func parseField(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> HTTPParseError? {
        if isOptionalWhitespace(raw[start]) { return .badRequestOrResponse(kind, "obsolete line folding") }
        var i = start
        while i < end && isTokenChar(raw[i]) { i += 1 }
        guard i > start, i < end, raw[i] == ASCII.colon else {
            return .badRequestOrResponse(kind, "invalid header name")
        }
        let nameEnd = i
        i += 1
        while i < end && isOptionalWhitespace(raw[i]) { i += 1 }
        let valueStart = i
        var valueEnd = i
        while i < end {
            let byte = raw[i]
            guard isFieldValueChar(byte) else { return .badRequestOrResponse(kind, "invalid byte in header value") }
            i += 1
            if !isOptionalWhitespace(byte) { valueEnd = i }
        }
        fields.append(
            HeaderField(
                nameStart: UInt32(truncatingIfNeeded: start),
                nameLength: UInt32(truncatingIfNeeded: nameEnd - start),
                valueStart: UInt32(truncatingIfNeeded: valueStart),
                valueLength: UInt32(truncatingIfNeeded: valueEnd - valueStart),
                known: classifyHeaderName(raw, start, nameEnd - start)
            )
        )
        return nil
    }

    // MARK: finishing

    /// The request described by a complete head. `bytes` must be exactly the head's bytes
    /// (the same offsets the parser saw). Applies the framing rules of RFC 9112 §6 strictly:
    /// anything a second parser could read differently is refused.
    public func finishRequest(_ bytes: ByteBuffer) throws(HTTPParseError) -> RequestHead {
        precondition(kind == .request)
        let semantics = bytes.withUnsafeReadableBytes { raw in
            Self.requestSemantics(raw, fields: fields, version: version, maxBody: limits.maxBody)
        }
        let parts = try semantics.get()
        return RequestHead(
            block: HeaderBlock(bytes: bytes, fields: fields),
            method: method,
            methodRange: methodOrVersionRange,
            targetRange: targetOrStatusRange,
            version: version,
            framing: parts.framing,
            connection: parts.connection,
            expectContinue: parts.expectContinue,
            hostIndex: parts.hostIndex,
            upgradeIndex: parts.upgradeIndex
        )
    }

    /// The response described by a complete head, framed for a request with `requestMethod`.
    public func finishResponse(_ bytes: ByteBuffer, requestMethod: HTTPMethod) throws(HTTPParseError) -> ResponseHead {
        precondition(kind == .response)
        let semantics = bytes.withUnsafeReadableBytes { raw in
            Self.responseSemantics(raw, fields: fields, version: version, status: status, requestMethod: requestMethod)
        }
        let parts = try semantics.get()
        return ResponseHead(
            block: HeaderBlock(bytes: bytes, fields: fields),
            version: version,
            status: status,
            reasonRange: reasonRange,
            framing: parts.framing,
            connection: parts.connection
        )
    }

    /// The trailer fields of a complete trailer section.
    public func finishTrailers(_ bytes: ByteBuffer) -> HeaderBlock {
        HeaderBlock(bytes: bytes, fields: fields)
    }

    private struct RequestSemantics {
        var framing: BodyFraming = .none
        var connection = ConnectionOptions()
        var expectContinue = false
        var hostIndex: Int?
        var upgradeIndex: Int?
    }

    private static func requestSemantics(
        _ raw: UnsafeRawBufferPointer, fields: [HeaderField], version: HTTPVersion, maxBody: Int64
    ) -> Result<RequestSemantics, HTTPParseError> {
        var result = RequestSemantics()
        var contentLength: Int64?
        var chunked = false
        var sawTransferEncoding = false
        for (index, field) in fields.enumerated() {
            switch field.known {
            case .host:
                guard result.hostIndex == nil else { return .failure(.badRequest("more than one Host")) }
                guard isValidHost(raw, field.valueRange) else { return .failure(.badRequest("invalid Host")) }
                result.hostIndex = index
            case .contentLength:
                guard contentLength == nil else { return .failure(.badRequest("more than one Content-Length")) }
                // No trailing whitespace either: llhttp refuses it, so a peer parser might too.
                guard raw[field.valueRange.upperBound] == ASCII.cr, let length = parseContentLength(raw, field.valueRange) else {
                    return .failure(.badRequest("invalid Content-Length"))
                }
                contentLength = length
            case .transferEncoding:
                guard !sawTransferEncoding else { return .failure(.badRequest("more than one Transfer-Encoding")) }
                sawTransferEncoding = true
                guard raw[field.valueRange.upperBound] == ASCII.cr,
                    equalsLowercase(raw, field.valueRange.lowerBound, field.valueRange.count, "chunked")
                else {
                    return .failure(.badRequest("Transfer-Encoding other than chunked"))
                }
                chunked = true
            case .connection:
                guard parseConnection(raw, field.valueRange, into: &result.connection) else {
                    return .failure(.badRequest("invalid Connection"))
                }
            case .expect:
                guard equalsLowercase(raw, field.valueRange.lowerBound, field.valueRange.count, "100-continue") else {
                    return .failure(.expectationFailed)
                }
                result.expectContinue = version == .http1_1
            case .upgrade:
                result.upgradeIndex = index
            default:
                break
            }
        }
        if version == .http1_1 && result.hostIndex == nil { return .failure(.badRequest("missing Host")) }
        if sawTransferEncoding {
            guard contentLength == nil else { return .failure(.badRequest("both Content-Length and Transfer-Encoding")) }
            guard version == .http1_1 else { return .failure(.badRequest("Transfer-Encoding in HTTP/1.0")) }
            result.framing = chunked ? .chunked : .none
        } else if let contentLength {
            guard contentLength <= maxBody else { return .failure(.bodyTooLarge) }
            result.framing = contentLength == 0 ? .none : .contentLength(contentLength)
        }
        return .success(result)
    }

    private struct ResponseSemantics {
        var framing: BodyFraming = .untilClose
        var connection = ConnectionOptions()
    }

    private static func responseSemantics(
        _ raw: UnsafeRawBufferPointer, fields: [HeaderField], version: HTTPVersion, status: Int, requestMethod: HTTPMethod
    ) -> Result<ResponseSemantics, HTTPParseError> {
        var result = ResponseSemantics()
        var contentLength: Int64?
        var sawTransferEncoding = false
        for field in fields {
            switch field.known {
            case .contentLength:
                // Repeated identical values are tolerated from upstreams (RFC 9110 §8.6);
                // differing ones mean the framing cannot be trusted.
                guard let length = parseContentLengthList(raw, field.valueRange) else {
                    return .failure(.badResponse("invalid Content-Length"))
                }
                if let contentLength, contentLength != length {
                    return .failure(.badResponse("conflicting Content-Length"))
                }
                contentLength = length
            case .transferEncoding:
                guard !sawTransferEncoding,
                    equalsLowercase(raw, field.valueRange.lowerBound, field.valueRange.count, "chunked")
                else {
                    return .failure(.badResponse("Transfer-Encoding other than chunked"))
                }
                sawTransferEncoding = true
            case .connection:
                guard parseConnection(raw, field.valueRange, into: &result.connection) else {
                    return .failure(.badResponse("invalid Connection"))
                }
            default:
                break
            }
        }
        if requestMethod == .head || status < 200 || status == 204 || status == 304 {
            result.framing = .none
            return .success(result)
        }
        if sawTransferEncoding {
            guard contentLength == nil else { return .failure(.badResponse("both Content-Length and Transfer-Encoding")) }
            guard version == .http1_1 else { return .failure(.badResponse("Transfer-Encoding in HTTP/1.0")) }
            result.framing = .chunked
        } else if let contentLength {
            result.framing = contentLength == 0 ? .none : .contentLength(contentLength)
        } else {
            result.framing = .untilClose
        }
        return .success(result)
    }

    /// 1*DIGIT, at most 18 digits so it always fits an Int64.
    static func parseContentLength(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int64? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value: Int64 = 0
        for i in range {
            let byte = raw[i]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// A Content-Length that may be a list of identical values ("5, 5").
    static func parseContentLengthList(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int64? {
        var result: Int64?
        var elementStart = range.lowerBound
        var i = range.lowerBound
        while i <= range.upperBound {
            if i == range.upperBound || raw[i] == ASCII.comma {
                var s = elementStart, e = i
                while s < e && isOptionalWhitespace(raw[s]) { s += 1 }
                while e > s && isOptionalWhitespace(raw[e - 1]) { e -= 1 }
                guard let value = parseContentLength(raw, s..<e) else { return nil }
                if let result, result != value { return nil }
                result = value
                elementStart = i + 1
            }
            i += 1
        }
        return result
    }

    /// Reads `Connection` tokens. Returns false when the value is not a token list.
    static func parseConnection(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, into options: inout ConnectionOptions) -> Bool {
        var i = range.lowerBound
        while i < range.upperBound {
            while i < range.upperBound && (isOptionalWhitespace(raw[i]) || raw[i] == ASCII.comma) { i += 1 }
            let tokenStart = i
            while i < range.upperBound && isTokenChar(raw[i]) { i += 1 }
            let tokenEnd = i
            while i < range.upperBound && isOptionalWhitespace(raw[i]) { i += 1 }
            if i < range.upperBound && raw[i] != ASCII.comma { return false }
            let count = tokenEnd - tokenStart
            guard count > 0 else { continue }
            if equalsLowercase(raw, tokenStart, count, "close") {
                options.close = true
            } else if equalsLowercase(raw, tokenStart, count, "keep-alive") {
                options.keepAlive = true
            } else if equalsLowercase(raw, tokenStart, count, "upgrade") {
                options.upgrade = true
            } else {
                options.nominatesOtherHeaders = true
            }
        }
        return true
    }

    /// uri-host [ ":" port ] with reg-name, IPv4 or bracketed IPv6 characters only; never
    /// empty, never userinfo, slashes or whitespace (those confuse routing and logs).
    static func isValidHost(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        guard !range.isEmpty, range.count <= 255 else { return false }
        for i in range {
            switch raw[i] {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
                UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "%"),
                UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"),
                UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"),
                UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
                continue
            default:
                return false
            }
        }
        return true
    }
}

extension HTTPParseError {
    static func badRequestOrResponse(_ kind: HeadParser.Kind, _ reason: String) -> Self {
        kind == .response ? .badResponse(reason) : .badRequest(reason)
    }
}
