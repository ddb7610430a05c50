import ActAsHTTP
import NIOCore
import NIOHPACK

/// SPEC §10.4: an HTTP/2 stream is handled as the same HTTP/1.1 request would be. These pure
/// functions turn a stream's request header block into that request's HTTP/1.1 head, for the
/// strict codec and the one pipeline behind it, and an HTTP/1.1 response head the pipeline
/// wrote into an HTTP/2 header block.
///
/// NIOHTTP2 has already refused what it checks (RFC 9113 §8.2: connection-specific fields,
/// `te` other than `trailers`, upper-case or invalid names, CR/LF/NUL in values, missing,
/// repeated, unknown or misplaced pseudo-headers, `content-length` against the DATA). What it
/// leaves is checked here, so that every malformed message is a stream error before any byte
/// reaches the pipeline.
enum HTTP2Translation {
    enum RequestBody: Equatable {
        /// END_STREAM came with the headers.
        case none
        /// `content-length` given: the DATA passes as it is (NIOHTTP2 holds it to the length).
        /// Nil when the value is not one number (the codec refuses it with 400).
        case contentLength(Int64?)
        /// No length: the DATA is sent as chunks, trailers as the chunked trailer section.
        case chunked
    }

    enum Request: Equatable {
        case head(ByteBuffer, method: HTTPMethod, body: RequestBody)
        /// RFC 9113 §8.1.1: answered with RST_STREAM PROTOCOL_ERROR. The reason is for tests.
        case malformed(String)
    }

    /// The HTTP/1.1 head of a request header block (names are lower case: NIOHTTP2 checked).
    static func request(_ headers: HPACKHeaders, endStream: Bool, allocator: ByteBufferAllocator) -> Request {
        var method: String?
        var path: String?
        var authority: String?
        var hosts: [String] = []
        var cookies: [String] = []
        var contentLength: [String] = []
        for (name, value, _) in headers {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": authority = value
                default: break  // :scheme; NIOHTTP2 refused any other
                }
                continue
            }
            // RFC 9113 §8.2.1: no leading or trailing whitespace in a value.
            if let first = value.utf8.first, let last = value.utf8.last, isWhitespace(first) || isWhitespace(last) {
                return .malformed("whitespace around the value of \(name)")
            }
            switch name {
            case "host": hosts.append(value)
            case "cookie": cookies.append(value)
            case "content-length": contentLength.append(value)
            default: break
            }
        }
        guard let method else { return .malformed("no :method") }
        let parsedMethod = HTTPMethod(token: method)
        let target: String
        if parsedMethod == .connect {
            // RFC 9113 §8.5: CONNECT names only an authority; the pipeline refuses it as HTTP/1.1 does.
            guard let authority, path == nil else { return .malformed("CONNECT without :authority") }
            target = authority
        } else {
            guard let path else { return .malformed("no :path") }
            // RFC 9113 §8.3.1: origin form, or `*` for OPTIONS.
            guard path.utf8.first == UInt8(ascii: "/") || (path == "*" && parsedMethod == .options) else {
                return .malformed(":path is not absolute")
            }
            target = path
        }
        // RFC 9113 §8.3.1: a host field that differs from :authority is malformed.
        if let authority, hosts.contains(where: { !$0.utf8.elementsEqual(authority.utf8, by: caseInsensitiveEqual) }) {
            return .malformed("host differs from :authority")
        }
        let body: RequestBody
        if endStream {
            body = .none
        } else if contentLength.isEmpty {
            body = .chunked
        } else {
            let length = contentLength.count == 1 && contentLength[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? Int64(contentLength[0]) : nil
            body = .contentLength(length)
        }

        var out = allocator.buffer(capacity: 256)
        out.writeString(method)
        out.writeStaticString(" ")
        out.writeString(target)
        out.writeStaticString(" HTTP/1.1\r\n")
        if let authority {
            out.writeStaticString("host: ")
            out.writeString(authority)
            out.writeStaticString("\r\n")
        }
        for (name, value, _) in headers where name.utf8.first != UInt8(ascii: ":") {
            if name == "cookie" || (name == "host" && authority != nil) { continue }
            writeField(name, value, into: &out)
        }
        // RFC 9113 §8.2.3: cookie fields may be split; HTTP/1.1 has one, joined by "; ".
        if !cookies.isEmpty { writeField("cookie", cookies.joined(separator: "; "), into: &out) }
        if body == .chunked { out.writeStaticString("transfer-encoding: chunked\r\n") }
        out.writeStaticString("\r\n")
        return .head(out, method: parsedMethod, body: body)
    }

    /// A request trailer block as the chunked body's last chunk and trailer section.
    static func lastChunk(trailers: HPACKHeaders?, into out: inout ByteBuffer) {
        out.writeStaticString("0\r\n")
        for (name, value, _) in trailers ?? [:] where name.utf8.first != UInt8(ascii: ":") {
            writeField(name, value, into: &out)
        }
        out.writeStaticString("\r\n")
    }

    /// The HTTP/2 header block of a response head the pipeline wrote: `:status`, the fields
    /// in lower case without the connection-specific ones (RFC 9113 §8.2.2); `set-cookie`
    /// is never put in the HPACK table (RFC 7541 §7.1.3).
    static func responseHeaders(_ head: ResponseHead) -> HPACKHeaders {
        var headers = HPACKHeaders()
        headers.reserveCapacity(head.block.fields.count + 1)
        headers.add(name: ":status", value: String(head.status))
        for field in head.block.fields where !isConnectionSpecific(field.known) {
            let name = head.block.name(field).lowercased()
            headers.add(name: name, value: head.block.value(field), indexing: indexing(name))
        }
        return headers
    }

    /// `set-cookie` is never indexed; `x-request-id` (unique per response) is not, so it does
    /// not fill the dynamic table that every later header is looked up in.
    static func indexing(_ name: String) -> HPACKIndexing {
        switch name {
        case "set-cookie": return .neverIndexed
        case "x-request-id": return .nonIndexable
        default: return .indexable
        }
    }

    /// A response trailer section (chunked) as an HTTP/2 header block.
    static func trailerHeaders(_ block: HeaderBlock) -> HPACKHeaders {
        var headers = HPACKHeaders()
        for field in block.fields where !isConnectionSpecific(field.known) {
            headers.add(name: block.name(field).lowercased(), value: block.value(field))
        }
        return headers
    }

    /// RFC 9113 §8.2.2: fields that mean something only to an HTTP/1.1 connection.
    private static func isConnectionSpecific(_ known: KnownHeader) -> Bool {
        switch known {
        case .connection, .keepAlive, .proxyConnection, .transferEncoding, .upgrade, .te: return true
        default: return false
        }
    }

    private static func writeField(_ name: String, _ value: String, into out: inout ByteBuffer) {
        out.writeString(name)
        out.writeStaticString(": ")
        out.writeString(value)
        out.writeStaticString("\r\n")
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    private static func caseInsensitiveEqual(_ a: UInt8, _ b: UInt8) -> Bool {
        a == b || (a | 0x20 == b | 0x20 && (a | 0x20) >= UInt8(ascii: "a") && (a | 0x20) <= UInt8(ascii: "z"))
    }
}
