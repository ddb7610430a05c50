import ActAsHTTP

/// What one pass over a request's header fields found about credentials and spoofing: the
/// session cookie and API token (as byte ranges, no copies), and whether any field must be
/// filtered or the request refused.
struct RequestCredentials {
    /// Value of `__Host-actas_session` (first occurrence).
    var sessionCookie: Range<Int>?
    /// The `actas_…` token of `Authorization: Bearer actas_…`.
    var bearerToken: Range<Int>?
    /// Some Cookie field carries a cookie named `__Host-actas…`: filter Cookie fields.
    var hasActAsCookies = false
    /// Some Authorization field carries an `actas_` token: drop those fields.
    var hasActAsToken = false
    /// `Impersonate-*` (Kubernetes-style impersonation headers): refused with 403.
    var impersonateHeader = false
    /// The client's own `X-Request-Id`, kept for the log as `client_request_id`.
    var clientRequestID: Range<Int>?

    static let cookieName: [UInt8] = Array("cookie".utf8)
    static let authorizationName: [UInt8] = Array("authorization".utf8)
    static let impersonatePrefix: [UInt8] = Array("impersonate-".utf8)
    static let requestIDName: [UInt8] = Array("x-request-id".utf8)
    static let sessionCookieName: [UInt8] = Array("__Host-actas_session".utf8)
    static let actasCookiePrefix: [UInt8] = Array("__host-actas".utf8)
    static let bearer: [UInt8] = Array("bearer".utf8)
    static let tokenPrefix: [UInt8] = Array("actas_".utf8)

    static func scan(_ block: HeaderBlock) -> RequestCredentials {
        var found = RequestCredentials()
        block.withUnsafeBytes { raw in
            for field in block.fields where field.known == .other {
                let name = field.nameRange
                switch name.count {
                case 6 where HeaderRewriter.equalsLowercase(raw, name, cookieName):
                    scanCookies(raw, field.valueRange, into: &found)
                case 13 where HeaderRewriter.equalsLowercase(raw, name, authorizationName):
                    if let token = actasToken(raw, field.valueRange) {
                        found.hasActAsToken = true
                        if found.bearerToken == nil { found.bearerToken = token }
                    }
                case 12 where found.clientRequestID == nil && HeaderRewriter.equalsNormalised(raw, name.lowerBound, requestIDName, count: 12):
                    found.clientRequestID = field.valueRange
                default:
                    break
                }
                if name.count > 12, HeaderRewriter.equalsNormalised(raw, name.lowerBound, impersonatePrefix, count: 12) {
                    found.impersonateHeader = true
                }
            }
        }
        return found
    }

    /// `name=value; name=value`: finds our session cookie and notes any cookie of ours.
    static func scanCookies(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>, into found: inout RequestCredentials) {
        forEachCookie(raw, value) { name, cookieValue in
            if name.count >= actasCookiePrefix.count, HeaderRewriter.equalsLowercase(raw, name.lowerBound..<(name.lowerBound + actasCookiePrefix.count), actasCookiePrefix) {
                found.hasActAsCookies = true
                if found.sessionCookie == nil, equalsExactly(raw, name, sessionCookieName) {
                    found.sessionCookie = cookieValue
                }
            }
        }
    }

    /// Calls `body(nameRange, valueRange)` for each `name=value` pair of a Cookie value
    /// (pairs without `=` have an empty name, as browsers treat them).
    @inline(__always)
    static func forEachCookie(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>, _ body: (Range<Int>, Range<Int>) -> Void) {
        var start = value.lowerBound
        while start < value.upperBound {
            var end = start
            while end < value.upperBound, raw[end] != UInt8(ascii: ";") { end += 1 }
            var pairStart = start
            while pairStart < end, raw[pairStart] == UInt8(ascii: " ") || raw[pairStart] == UInt8(ascii: "\t") { pairStart += 1 }
            var pairEnd = end
            while pairEnd > pairStart, raw[pairEnd - 1] == UInt8(ascii: " ") || raw[pairEnd - 1] == UInt8(ascii: "\t") { pairEnd -= 1 }
            if pairStart < pairEnd {
                var eq = pairStart
                while eq < pairEnd, raw[eq] != UInt8(ascii: "=") { eq += 1 }
                if eq < pairEnd {
                    body(pairStart..<eq, (eq + 1)..<pairEnd)
                } else {
                    body(pairStart..<pairStart, pairStart..<pairEnd)
                }
            }
            start = end + 1
        }
    }

    /// The token of `Bearer actas_…` (scheme case-insensitive), if that is what the value is.
    static func actasToken(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>) -> Range<Int>? {
        guard value.count > bearer.count + 1 + tokenPrefix.count,
              HeaderRewriter.equalsLowercase(raw, value.lowerBound..<(value.lowerBound + bearer.count), bearer)
        else { return nil }
        var start = value.lowerBound + bearer.count
        guard raw[start] == UInt8(ascii: " ") else { return nil }
        while start < value.upperBound, raw[start] == UInt8(ascii: " ") { start += 1 }
        let token = start..<value.upperBound
        guard token.count > tokenPrefix.count, equalsExactly(raw, start..<(start + tokenPrefix.count), tokenPrefix) else { return nil }
        return token
    }

    @inline(__always)
    static func equalsExactly(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ expected: [UInt8]) -> Bool {
        guard range.count == expected.count else { return false }
        var i = 0
        for index in range {
            if raw[index] != expected[i] { return false }
            i += 1
        }
        return true
    }
}
