import ActAsCore

/// Where to go after sign-in, sign-out or exit (`rd`): only paths on this origin, and only in
/// their resolved form. Everything a browser could read as another origin — `//evil`, `/\evil`,
/// `/%09/evil` (browsers drop tabs and newlines), `https://evil`, `javascript:` — falls back to
/// `/`. Dot segments are resolved (also `%2e` ones, and `..;x`, which Tomcat-style servers read
/// as `..`) before the check, so `/.actas/../..//evil.test` cannot come out as `//evil.test` at
/// an application that resolves them after us.
public enum ReturnPath {
    public static let fallback = "/"
    static let maxLength = 2048

    public static func sanitise(_ candidate: String?) -> String {
        guard let candidate, let path = resolved(candidate) else { return fallback }
        return path
    }

    public static func isSafe(_ path: String) -> Bool {
        resolved(path) != nil
    }

    /// The candidate with its dot segments resolved, or nil when it is not a plain same-origin
    /// path. The query and fragment are kept as they are.
    public static func resolved(_ candidate: String) -> String? {
        let bytes = Array(candidate.utf8)
        guard bytes.count <= maxLength, bytes.first == UInt8(ascii: "/") else { return nil }
        // Controls, spaces, backslashes and non-ASCII anywhere: a path we build never needs
        // them raw, and browsers repair them into something else.
        for byte in bytes where byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\\") {
            return nil
        }
        // The same after one round of percent-decoding.
        for byte in PercentEncoding.decode(bytes) where byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\\") {
            return nil
        }
        let pathEnd = bytes.firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? bytes.endIndex
        let path = bytes[..<pathEnd]
        // An encoded `/`, `\` or `%`, or bytes that are not UTF-8 (overlong `%c0%ae` is a dot to
        // some decoders), would read differently to an application that decodes once more.
        let decodedPath = PercentEncoding.decode(path)
        guard String(validating: decodedPath, as: UTF8.self) != nil,
              decodedPath.count(where: { $0 == UInt8(ascii: "/") }) == path.count(where: { $0 == UInt8(ascii: "/") }),
              !containsEncodedPercent(path)
        else { return nil }
        guard let segments = resolveDotSegments(path) else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for segment in segments {
            out.append(UInt8(ascii: "/"))
            out.append(contentsOf: segment)
        }
        // After resolving: still no `//` authority (`/\` cannot occur: backslashes are refused).
        guard out.count < 2 || out[1] != UInt8(ascii: "/") else { return nil }
        out.append(contentsOf: bytes[pathEnd...])
        return String(decoding: out, as: UTF8.self)
    }

    /// `%25`: double encoding (`%252e%252e` is `..` to an application that decodes twice).
    static func containsEncodedPercent(_ path: ArraySlice<UInt8>) -> Bool {
        var index = path.startIndex
        while let percent = path[index...].firstIndex(of: UInt8(ascii: "%")) {
            let hex = path[(percent + 1)...].prefix(2)
            if hex.count == 2, hex.first == UInt8(ascii: "2"), hex.last == UInt8(ascii: "5") { return true }
            index = percent + 1
        }
        return false
    }

    /// RFC 3986 §5.2.4 over the segments of `path` (which starts with `/`): the segments of the
    /// result, each to be preceded by `/`. Nil for a segment that only looks like a dot segment
    /// to some servers (`...`, `. `, `..%20`): ambiguous, so refused.
    static func resolveDotSegments(_ path: ArraySlice<UInt8>) -> [ArraySlice<UInt8>]? {
        let segments = path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        var out: [ArraySlice<UInt8>] = []
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            // `;parameters` are not part of the name to servers that honour them.
            let name = PercentEncoding.decode(segment.prefix { $0 != UInt8(ascii: ";") })
            switch DotSegment(name) {
            case .current:
                if isLast { out.append([]) }
            case .parent:
                if !out.isEmpty { out.removeLast() }
                if isLast { out.append([]) }
            case .ambiguous:
                return nil
            case .none:
                out.append(segment)
            }
        }
        return out.isEmpty ? [[]] : out
    }

    enum DotSegment {
        case current, parent, ambiguous

        init?(_ name: [UInt8]) {
            guard let first = name.first, first == UInt8(ascii: ".") else { return nil }
            if name == [UInt8(ascii: ".")] { self = .current; return }
            if name == [UInt8(ascii: "."), UInt8(ascii: ".")] { self = .parent; return }
            // Windows and some frameworks drop trailing dots and spaces: `...` and `.. ` are `..`.
            if name.allSatisfy({ $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: " ") }) { self = .ambiguous; return }
            return nil
        }
    }
}
