import ActAsCore

/// Where to go after sign-in (`rd`): only paths on this origin. Everything a browser could
/// read as another origin — `//evil`, `/\evil`, `/%09/evil` (browsers drop tabs and
/// newlines), `https://evil`, `javascript:` — falls back to `/`.
public enum ReturnPath {
    public static let fallback = "/"
    static let maxLength = 2048

    public static func sanitise(_ candidate: String?) -> String {
        guard let candidate, isSafe(candidate) else { return fallback }
        return candidate
    }

    public static func isSafe(_ path: String) -> Bool {
        let bytes = Array(path.utf8)
        guard bytes.count <= maxLength, bytes.first == UInt8(ascii: "/") else { return false }
        // Controls, spaces, backslashes and non-ASCII anywhere: a path we build never needs
        // them raw, and browsers repair them into something else.
        for byte in bytes where byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\\") {
            return false
        }
        // The same after one round of percent-decoding, and no `//` or `/\` authority trick.
        let decoded = PercentEncoding.decode(bytes)
        for byte in decoded where byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\\") {
            return false
        }
        for form in [bytes, decoded] where form.count >= 2 {
            if form[1] == UInt8(ascii: "/") || form[1] == UInt8(ascii: "\\") { return false }
        }
        return true
    }
}
