import NIOCore

/// Request-side decisions of the "sanitize" stage that are about bytes only: which client
/// headers route requests inside applications, what to log about dropped trailers, and what can
/// be read of a request the parser refused.
public enum RequestSanitizer {
    /// Headers that IIS (URL Rewrite), Symfony, Laravel, Zend and some Java frameworks read as
    /// the request's real path or host, routing past what the proxy checked (`hidden_paths`,
    /// `public_paths`, `public_hosts`). The proxy never forwards them. (`X-Forwarded-Path`,
    /// `X-Forwarded-Prefix` and the other `X-Forwarded-*` are stripped as the proxy's own.)
    public static let routingHeaders: [[UInt8]] = [
        "x-original-url", "x-rewrite-url", "x-original-uri", "x-original-path", "x-original-host", "x-host",
        "x-http-host-override", "x-override-url",
    ].map { Array($0.utf8) }

    /// Whether a header name is one of `routingHeaders`, compared in lower case with `_` read
    /// as `-` (as CGI-style servers read them).
    @inline(__always)
    public static func isRoutingHeader(_ raw: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        guard name.count >= 6, raw[name.lowerBound] | 0x20 == UInt8(ascii: "x") else { return false }
        for candidate in routingHeaders where candidate.count == name.count {
            var equal = true
            for (offset, expected) in candidate.enumerated() {
                var byte = raw[name.lowerBound + offset]
                if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
                if byte == UInt8(ascii: "_") { byte = UInt8(ascii: "-") }
                if byte != expected {
                    equal = false
                    break
                }
            }
            if equal { return true }
        }
        return false
    }

    /// SPEC §9: request trailers never carry identity, credentials or overrides upstream; the
    /// proxy drops them all (no application needs them, and no list of "harmless" names can be
    /// trusted to stay harmless). The request record says so in `detail`, with the names only:
    /// values may be credentials.
    public static func droppedTrailersDetail(_ trailers: HeaderBlock?) -> String? {
        guard let trailers else { return nil }
        return droppedTrailersDetail(names: trailers.fields.map { trailers.name($0) })
    }

    /// The same from the names alone (an HTTP/2 trailer block), in order, each once.
    public static func droppedTrailersDetail(names all: [String]) -> String? {
        guard !all.isEmpty else { return nil }
        var names: [String] = []
        for name in all {
            if !names.contains(where: { $0.lowercased() == name.lowercased() }) { names.append(name) }
            if names.count == maxLoggedNames { break }
        }
        return "request trailers dropped: " + names.joined(separator: ", ")
    }

    static let maxLoggedNames = 20

    /// What can be read of a request line the parser refused: the method (a token of at most 20
    /// characters, else nil) and the target up to the next space, at most `maxTarget` bytes. Any
    /// byte may be in the target (CR, LF, quotes): the log's JSON writer escapes it.
    public static func sketchRequestLine(_ buffer: ByteBuffer, maxTarget: Int = 2048) -> (method: String?, target: String?) {
        buffer.withUnsafeReadableBytes { raw -> (String?, String?) in
            let methodEnd = raw.firstIndex(of: UInt8(ascii: " ")) ?? raw.count
            guard methodEnd > 0, methodEnd <= 20, raw[..<methodEnd].allSatisfy(isTokenByte) else { return (nil, nil) }
            let method = String(decoding: UnsafeRawBufferPointer(rebasing: raw[..<methodEnd]), as: UTF8.self)
            guard methodEnd < raw.count else { return (method, nil) }
            let start = methodEnd + 1
            var end = start
            while end < raw.count, end - start < maxTarget, raw[end] != UInt8(ascii: " ") { end += 1 }
            guard end > start else { return (method, nil) }
            return (method, String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<end]), as: UTF8.self))
        }
    }

    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
