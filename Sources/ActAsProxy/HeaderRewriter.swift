import ActAsCore
import ActAsHTTP
import Foundation
import NIOCore

/// Writes heads for the next hop: the request to the upstream, the response to the client.
/// Works on the parsed offsets and copies header lines byte for byte; no Strings.
enum HeaderRewriter {
    /// What the request path decided about one request, needed to write its upstream head.
    struct RequestFacts {
        var requestID: RequestID
        /// Client address as text (`X-Forwarded-For`).
        var clientAddress: [UInt8]
        var peerIsTrustedProxy: Bool
        /// Forward `Upgrade`/`Connection: upgrade` (a WebSocket handshake).
        var upgrade: Bool
        /// Origin-form target to send instead of the parsed one (absolute-form requests).
        var targetOverride: [UInt8]?
        /// Host to send instead of the client's (absolute-form authority, or none sent).
        var hostOverride: [UInt8]?
        /// Cookie fields carry ActAs cookies: forward them without those.
        var filterCookies = false
        /// Authorization fields carrying an `actas_` token are the proxy's: drop them.
        var dropActAsToken = false
        /// Identity header lines (user, email, groups, assertion) for a signed-in request.
        var identity: [UInt8]? = nil
        /// While impersonating: the session jar's cookies replace every cookie the browser sent.
        var impersonationCookies: String? = nil
        /// While impersonating: ask only for encodings the banner rewriter can decode.
        var narrowAcceptEncoding = false
    }

    // MARK: request

    /// Returns where, in `out`'s readable bytes, the value of the `X-Forwarded-Host` it wrote
    /// lies: the validated public host, which the response side needs for `Location` (SPEC §9).
    @discardableResult
    static func writeUpstreamRequest(
        _ head: RequestHead, facts: RequestFacts, settings: ProxySettings, into out: inout ByteBuffer
    ) -> Range<Int> {
        let block = head.block
        var forwardedHost = 0..<0
        let nominated = head.connection.nominatesOtherHeaders ? nominatedHeaders(block) : []
        block.withUnsafeBytes { raw in
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[head.methodRange]))
            out.writeInteger(UInt8(ascii: " "))
            if let target = facts.targetOverride {
                out.writeBytes(target)
            } else {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[head.targetRange]))
            }
            out.writeStaticString(" HTTP/1.1\r\n")

            var clientForwardedFor: [Range<Int>] = []
            var host: Range<Int>?
            for field in block.fields {
                switch field.known {
                case .host:
                    host = field.valueRange
                    if facts.hostOverride != nil { continue }
                case .contentLength:
                    break
                case .other:
                    if field.nameLength == 6, facts.filterCookies || facts.impersonationCookies != nil,
                       equalsLowercase(raw, field.nameRange, RequestCredentials.cookieName) {
                        if facts.impersonationCookies == nil { writeFilteredCookies(raw, field, into: &out) }
                        continue
                    }
                    if facts.narrowAcceptEncoding, field.nameLength == 15, equalsLowercase(raw, field.nameRange, acceptEncoding) {
                        let value = String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.valueRange]), as: UTF8.self).lowercased()
                        if value.contains("gzip") { out.writeStaticString("Accept-Encoding: gzip\r\n") }
                        continue
                    }
                    if facts.dropActAsToken, field.nameLength == 13, equalsLowercase(raw, field.nameRange, RequestCredentials.authorizationName),
                       RequestCredentials.actasToken(raw, field.valueRange) != nil {
                        continue
                    }
                    if isProxyOwned(raw, field, settings) {
                        // RFC 9110 §5.3: repeated fields are one list; every part is kept. An empty
                        // field is no element (§5.6.1) and must not become `, ` in the list.
                        if facts.peerIsTrustedProxy, !field.valueRange.isEmpty, equalsLowercase(raw, field.nameRange, xForwardedFor) {
                            clientForwardedFor.append(field.valueRange)
                        }
                        continue
                    }
                    // Routing overrides (X-Original-URL …) would route past the checked path.
                    if RequestSanitizer.isRoutingHeader(raw, field.nameRange) { continue }
                    if !nominated.isEmpty, isNominated(raw, field, nominated) { continue }
                case .expect:
                    break
                case .trailer:
                    // Request trailers are never forwarded (SPEC §9), so none is announced.
                    continue
                default:
                    // Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade, Proxy-*: this hop only.
                    continue
                }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.lineRange]))
                out.writeStaticString("\r\n")
            }

            if let cookies = facts.impersonationCookies, !cookies.isEmpty {
                out.writeStaticString("Cookie: ")
                out.writeString(cookies)
                out.writeStaticString("\r\n")
            }
            if let override = facts.hostOverride {
                out.writeStaticString("Host: ")
                out.writeBytes(override)
                out.writeStaticString("\r\n")
            }
            if case .chunked = head.framing {
                out.writeStaticString("Transfer-Encoding: chunked\r\n")
            }
            if facts.upgrade, let index = head.upgradeIndex {
                out.writeStaticString("Connection: Upgrade\r\nUpgrade: ")
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[block.fields[index].valueRange]))
                out.writeStaticString("\r\n")
            }

            // SPEC §5: the proxy's own forwarding headers, written after every client header
            // was filtered, so nothing a client sends (or nominates in Connection) changes them.
            out.writeStaticString("X-Forwarded-For: ")
            for range in clientForwardedFor {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[range]))
                out.writeStaticString(", ")
            }
            out.writeBytes(facts.clientAddress)
            out.writeStaticString("\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: ")
            let hostStart = out.readableBytes
            if let override = facts.hostOverride {
                out.writeBytes(override)
            } else if let host {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[host]))
            }
            forwardedHost = hostStart..<out.readableBytes
            out.writeStaticString("\r\nX-Request-Id: ")
            facts.requestID.write(into: &out)
            out.writeStaticString("\r\n")
            if let identity = facts.identity { out.writeBytes(identity) }
            out.writeStaticString("\r\n")
        }
        return forwardedHost
    }

    /// A Cookie field without the proxy's own cookies; nothing at all when none is left.
    static func writeFilteredCookies(_ raw: UnsafeRawBufferPointer, _ field: HeaderField, into out: inout ByteBuffer) {
        var wrote = false
        RequestCredentials.forEachCookie(raw, field.valueRange) { name, value in
            let prefix = RequestCredentials.actasCookiePrefix
            if name.count >= prefix.count, equalsLowercase(raw, name.lowerBound..<(name.lowerBound + prefix.count), prefix) { return }
            if wrote {
                out.writeStaticString("; ")
            } else {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.nameRange]))
                out.writeStaticString(": ")
                wrote = true
            }
            let pair = name.isEmpty ? value : name.lowerBound..<value.upperBound
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[pair]))
        }
        if wrote { out.writeStaticString("\r\n") }
    }

    static let xForwardedFor: [UInt8] = Array("x-forwarded-for".utf8)

    /// Whether a client header names one the proxy sets itself, compared lowercase with `_`
    /// read as `-` (servers such as those behind CGI treat them the same).
    @inline(__always)
    static func isProxyOwned(_ raw: UnsafeRawBufferPointer, _ field: HeaderField, _ settings: ProxySettings) -> Bool {
        // One table lookup rejects most ordinary headers.
        guard settings.strippedFirstBytes[Int(raw[Int(field.nameStart)])] else { return false }
        let range = field.nameRange
        for owned in settings.strippedRequestHeaders where owned.count == range.count {
            if equalsNormalised(raw, range.lowerBound, owned, count: owned.count) { return true }
        }
        for prefix in settings.strippedRequestHeaderPrefixes where prefix.count <= range.count {
            if equalsNormalised(raw, range.lowerBound, prefix, count: prefix.count) { return true }
        }
        return false
    }

    @inline(__always)
    static func asciiLower(_ byte: UInt8) -> UInt8 {
        (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
    }

    @inline(__always)
    static func equalsNormalised(_ raw: UnsafeRawBufferPointer, _ start: Int, _ expected: [UInt8], count: Int) -> Bool {
        for i in 0..<count {
            var byte = asciiLower(raw[start + i])
            if byte == UInt8(ascii: "_") { byte = UInt8(ascii: "-") }
            if byte != expected[i] { return false }
        }
        return true
    }

    static func equalsLowercase(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ expected: [UInt8]) -> Bool {
        guard range.count == expected.count else { return false }
        for (i, index) in range.enumerated() where asciiLower(raw[index]) != expected[i] { return false }
        return true
    }

    /// Lowercased names listed in `Connection` (other than close/keep-alive/upgrade).
    static func nominatedHeaders(_ block: HeaderBlock) -> [[UInt8]] {
        var names: [[UInt8]] = []
        for field in block.fields where field.known == .connection {
            for token in block.value(field).split(separator: ",") {
                let name = token.trimmingCharacters(in: [" ", "\t"]).lowercased()
                if !name.isEmpty, name != "close", name != "keep-alive", name != "upgrade" {
                    names.append(Array(name.utf8))
                }
            }
        }
        return names
    }

    static func isNominated(_ raw: UnsafeRawBufferPointer, _ field: HeaderField, _ nominated: [[UInt8]]) -> Bool {
        nominated.contains { equalsLowercase(raw, field.nameRange, $0) }
    }

    // MARK: response

    /// How the body goes to the client.
    enum DownstreamFraming: Equatable {
        case none
        case contentLength
        case chunked
        /// HTTP/1.0 client and a body of unknown length: raw bytes, then close.
        case close
    }

    struct ResponseFacts {
        var requestID: RequestID
        var framing: DownstreamFraming
        var contentLength: Int64
        var close: Bool
        /// Client spoke HTTP/1.0 and keeps the connection: say so explicitly.
        var http10KeepAlive: Bool
        var hstsLine: [UInt8]
        /// Keep the upstream's Content-Length as is (HEAD, 304).
        var passContentLength: Bool
        var upgrade: Bool
        /// While impersonating: `Set-Cookie` goes into the session's jar, not to the browser.
        var cookieJar: CookieJar? = nil
        var cookiePath = "/"
        /// `Set-Cookie` lines putting back the administrator's own cookies after an
        /// impersonation (CookieJars.takeRestoration); written before the upstream's own.
        var restoredCookies: String? = nil
        /// The body is rewritten (the banner): validators and ranges no longer describe it, it
        /// leaves uncompressed, and it carries a CSRF token, so it must not be cached.
        var rewritten = false
        /// While impersonating: `X-Content-Type-Options: nosniff` replaces the upstream's, so no
        /// browser sniffs an untyped answer into an HTML page without the banner (SPEC §7).
        var nosniff = false
        /// The upstream's address, to rewrite `Location`-like fields that point at it (SPEC §9),
        /// and the public host the request was forwarded for (its `X-Forwarded-Host`).
        var upstreamAddress: UpstreamAddress? = nil
        var publicHost: ByteBuffer? = nil
    }

    /// What writing a response head left out, for the log.
    struct ResponseNotes {
        /// Names of cookies the upstream tried to set that the proxy owns (dropped).
        var refusedCookies: [String] = []
    }

    @discardableResult
    static func writeDownstreamResponse(_ head: ResponseHead, facts: ResponseFacts, into out: inout ByteBuffer) -> ResponseNotes {
        let block = head.block
        let nominated = head.connection.nominatesOtherHeaders ? nominatedHeaders(block) : []
        var sawHSTS = false
        var notes = ResponseNotes()
        var publicOrigin: String??  // looked up once, when a field needs it
        block.withUnsafeBytes { raw in
            out.writeStaticString("HTTP/1.1 ")
            writeStatus(head.status, into: &out)
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[head.reasonRange]))
            out.writeStaticString("\r\n")
            if let restored = facts.restoredCookies { out.writeString(restored) }
            for field in block.fields {
                switch field.known {
                case .contentLength:
                    if !facts.passContentLength { continue }
                case .upgrade:
                    if !facts.upgrade { continue }
                case .connection:
                    if facts.upgrade {
                        out.writeStaticString("Connection: Upgrade\r\n")
                    }
                    continue
                case .other, .trailer:
                    if !nominated.isEmpty, isNominated(raw, field, nominated) { continue }
                    let range = field.nameRange
                    if range.count == 12, equalsLowercase(raw, range, xRequestID) { continue }
                    if range.count == 10, equalsLowercase(raw, range, setCookie) {
                        let value = UnsafeRawBufferPointer(rebasing: raw[field.valueRange])
                        // SPEC §7: the proxy's cookies are never accepted from the upstream.
                        if SetCookieName.isProxyOwned(value) {
                            notes.refusedCookies.append(String(decoding: SetCookieName.name(value).prefix(64), as: UTF8.self))
                            continue
                        }
                        // While impersonating: into the jar; those scripts may read go to the browser too.
                        if let jar = facts.cookieJar,
                           jar.store(String(decoding: value, as: UTF8.self), requestPath: facts.cookiePath, now: Date()) != .stored(passToBrowser: true) {
                            continue
                        }
                    }
                    if facts.nosniff, range.count == 22, equalsLowercase(raw, range, xContentTypeOptions) { continue }
                    if let address = facts.upstreamAddress, let kind = locationField(raw, range) {
                        if publicOrigin == nil { publicOrigin = .some(facts.publicHost.flatMap(ResponseSanitizer.publicOrigin)) }
                        let value = String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.valueRange]), as: UTF8.self)
                        if let origin = publicOrigin!, let rewritten = kind == .refresh
                            ? address.rewriteRefresh(value, publicOrigin: origin) : address.rewrite(value, publicOrigin: origin) {
                            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.nameRange]))
                            out.writeStaticString(": ")
                            out.writeString(rewritten)
                            out.writeStaticString("\r\n")
                            continue
                        }
                    }
                    if range.count == 25, equalsLowercase(raw, range, strictTransportSecurity) { sawHSTS = true }
                    if facts.rewritten, rewrittenDrops.contains(where: { equalsLowercase(raw, range, $0) }) { continue }
                case .host, .expect:
                    break
                default:
                    continue
                }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.lineRange]))
                out.writeStaticString("\r\n")
            }
        }
        switch facts.framing {
        case .contentLength:
            out.writeStaticString("Content-Length: ")
            writeDecimal(facts.contentLength, into: &out)
            out.writeStaticString("\r\n")
        case .chunked:
            out.writeStaticString("Transfer-Encoding: chunked\r\n")
        case .none, .close:
            break
        }
        out.writeStaticString("X-Request-Id: ")
        facts.requestID.write(into: &out)
        out.writeStaticString("\r\n")
        if facts.rewritten { out.writeStaticString("Cache-Control: no-store\r\n") }
        if facts.nosniff { out.writeStaticString("X-Content-Type-Options: nosniff\r\n") }
        if !sawHSTS { out.writeBytes(facts.hstsLine) }
        if facts.close && !facts.upgrade {
            out.writeStaticString("Connection: close\r\n")
        } else if facts.http10KeepAlive {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
        return notes
    }

    enum LocationField { case url, refresh }

    /// `Location` and `Content-Location` carry a URL; `Refresh` a delay and a URL.
    @inline(__always)
    static func locationField(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> LocationField? {
        switch range.count {
        case 8: return equalsLowercase(raw, range, location) ? .url : nil
        case 16: return equalsLowercase(raw, range, contentLocation) ? .url : nil
        case 7: return equalsLowercase(raw, range, refresh) ? .refresh : nil
        default: return nil
        }
    }

    /// A 1xx interim response (100 Continue, 103 Early Hints): forwarded with hop-by-hop
    /// fields removed.
    static func writeInterimResponse(_ head: ResponseHead, into out: inout ByteBuffer) {
        let block = head.block
        block.withUnsafeBytes { raw in
            out.writeStaticString("HTTP/1.1 ")
            writeStatus(head.status, into: &out)
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[head.reasonRange]))
            out.writeStaticString("\r\n")
            for field in block.fields where field.known == .other {
                // Cookies come with the final response only (where the jar and the proxy's
                // own names are checked); a 103's would bypass both.
                if field.nameRange.count == 10, equalsLowercase(raw, field.nameRange, setCookie) { continue }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.lineRange]))
                out.writeStaticString("\r\n")
            }
            out.writeStaticString("\r\n")
        }
    }

    /// Trailer fields after a last chunk, re-serialised (only fields a trailer may carry).
    static func writeTrailers(_ trailers: HeaderBlock?, into out: inout ByteBuffer) {
        out.writeStaticString("0\r\n")
        if let trailers {
            trailers.withUnsafeBytes { raw in
                for field in trailers.fields where field.known == .other {
                    if field.nameRange.count == 10, equalsLowercase(raw, field.nameRange, setCookie) { continue }  // as for 1xx
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.lineRange]))
                    out.writeStaticString("\r\n")
                }
            }
        }
        out.writeStaticString("\r\n")
    }

    /// Three digits and a space, without going through String.
    @inline(__always)
    static func writeStatus(_ status: Int, into out: inout ByteBuffer) {
        out.writeInteger(UInt8(truncatingIfNeeded: 0x30 + status / 100))
        out.writeInteger(UInt8(truncatingIfNeeded: 0x30 + status / 10 % 10))
        out.writeInteger(UInt8(truncatingIfNeeded: 0x30 + status % 10))
        out.writeInteger(UInt8(ascii: " "))
    }

    static func writeDecimal(_ value: Int64, into out: inout ByteBuffer) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, enough for Int64
        withUnsafeMutableBytes(of: &digits) { scratch in
            var n = UInt64(max(value, 0))
            var i = scratch.count
            repeat {
                i -= 1
                scratch[i] = UInt8(truncatingIfNeeded: 0x30 + n % 10)
                n /= 10
            } while n > 0
            out.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[i...]))
        }
    }

    static let xRequestID: [UInt8] = Array("x-request-id".utf8)
    static let setCookie: [UInt8] = Array("set-cookie".utf8)
    static let xContentTypeOptions: [UInt8] = Array("x-content-type-options".utf8)
    static let location: [UInt8] = Array("location".utf8)
    static let contentLocation: [UInt8] = Array("content-location".utf8)
    static let refresh: [UInt8] = Array("refresh".utf8)
    static let acceptEncoding: [UInt8] = Array("accept-encoding".utf8)
    static let rewrittenDrops: [[UInt8]] = ["content-encoding", "etag", "content-md5", "accept-ranges", "cache-control", "digest",
                                            "content-digest", "repr-digest"].map { Array($0.utf8) }
    static let strictTransportSecurity: [UInt8] = Array("strict-transport-security".utf8)
}
