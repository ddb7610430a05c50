/// The result of normalising a request path.
public enum PathNormalization: Sendable, Equatable {
    /// The input was already normal: forward it as it is (the common case, no allocation).
    case unchanged
    /// Forward (and match) these bytes instead of the input.
    case normalized([UInt8])
    /// Strict mode only: `400 bad_path_encoding`.
    case badEncoding
}

/// Request paths as matched and forwarded (SPEC §7). Security-critical: the upstream must see
/// exactly the path that was checked, so the output of `normalize` is what gets forwarded.
///
/// Rules, applied segment by segment in one pass:
/// - percent-escapes of unreserved characters (ALPHA DIGIT `-._~`) are decoded; every other
///   escape is kept with upper-case hex (`%3a` → `%3A`). `%25` is never decoded, so no new `%`
///   can appear and decoding twice is impossible here;
/// - `;parameters` are dropped from every segment (`/a;x=1/b` → `/a/b`) before dot resolution,
///   so `..;` is `..`. An encoded `%3B` is data, not a delimiter;
/// - `.` and `..` segments are resolved (RFC 3986 §5.2.4) after decoding, so `%2e%2e` is `..`;
///   `..` above the root stays at the root; empty segments (`//`) are merged; a trailing `/`
///   is kept (`/a/b/..` → `/a/`); the empty path is `/`; a path not starting with `/` is read as
///   if it did (input is expected in origin-form).
///
/// In `strict` mode (while impersonating) these are refused, anywhere in the path, parameters
/// included: encoded `/` `\` NUL (`%2F`, `%5C`, `%00`), raw `\` and NUL, malformed escapes
/// (`%zz`, `%4`), and double encoding: `%25` followed by two hex digits in the output (also
/// when those digits were themselves encoded, `%25%32%65`). `%25` followed by anything else is
/// allowed: it is a literal `%` that no second decoding can turn into another character
/// (`/100%25`, `/a%25zz`). Also refused: a path whose escapes do not decode to well-formed
/// UTF-8 (`%C0%AE%C0%AE`, an overlong `..`; `%C0%AF`, an overlong `/`; `%FF`; surrogates),
/// which lenient decoders turn into separators and dots after the check.
///
/// Outside strict mode nothing is refused: malformed escapes, raw `\` and NUL pass through
/// untouched and encoded separators stay encoded. Callers deciding something security-relevant
/// without impersonation (say, whether a path is public) should use strict mode and treat a
/// refusal as "no".
public enum PathNormalizer {
    public static func normalize(_ path: UnsafeRawBufferPointer, strict: Bool) -> PathNormalization {
        if isAlreadyNormal(path) { return .unchanged }
        var refused = false
        // The output is never longer than the input plus a leading `/`.
        let output = [UInt8](unsafeUninitializedCapacity: path.count + 1) { buffer, count in
            if let length = rewrite(path, into: buffer.baseAddress!, strict: strict) {
                count = length
            } else {
                refused = true
                count = 0
            }
        }
        if refused || (strict && !PercentEncoding.decodesToValidUTF8(output)) { return .badEncoding }
        return output.elementsEqual(path) ? .unchanged : .normalized(output)
    }

    public static func normalize(_ path: String, strict: Bool) -> PathNormalization {
        var path = path
        return path.withUTF8 { normalize(UnsafeRawBufferPointer($0), strict: strict) }
    }

    /// The normalised path as a string, nil when strict mode refuses it.
    public static func normalized(_ path: String, strict: Bool) -> String? {
        switch normalize(path, strict: strict) {
        case .unchanged: return path
        case .normalized(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .badEncoding: return nil
        }
    }

    /// Where the path of a request-target ends: the index of the first `?`, else its length.
    public static func pathEnd(ofTarget target: UnsafeRawBufferPointer) -> Int {
        target.firstIndex(of: UInt8(ascii: "?")) ?? target.count
    }

    /// A request-target split at its first `?`; the query is nil when there is no `?`.
    public static func split(target: String) -> (path: Substring, query: Substring?) {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target[...], nil) }
        return (target[..<mark], target[target.utf8.index(after: mark)...])
    }

    // MARK: Fast check

    /// True when `rewrite` would return the input unchanged and refuse nothing: starts with `/`,
    /// no `%`, `;`, `\`, NUL, empty segment, or `.`/`..` segment.
    static func isAlreadyNormal(_ path: UnsafeRawBufferPointer) -> Bool {
        let count = path.count
        guard count > 0, path[0] == slash else { return false }
        var index = 1
        while index < count {
            let byte = path[index]
            switch byte {
            case percent, semicolon, backslash, 0:
                return false
            case slash:
                if path[index - 1] == slash { return false }
            case dot where path[index - 1] == slash:
                // `.` or `..` as a whole segment.
                let next = index + 1
                if next == count || path[next] == slash { return false }
                if path[next] == dot && (next + 1 == count || path[next + 1] == slash) { return false }
            default:
                break
            }
            index += 1
        }
        return true
    }

    // MARK: Rewrite

    /// Writes the normalised path to `out` (capacity ≥ input count + 1) and returns its length,
    /// or nil when strict mode refuses the path. `out` holds `/segment` runs, each non-empty and
    /// neither `.` nor `..`; a trailing `/` is only added at the very end.
    private static func rewrite(_ path: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>, strict: Bool) -> Int? {
        let count = path.count
        var length = 0
        var index = (count > 0 && path[0] == slash) ? 1 : 0
        while true {
            let segmentStart = length
            out[length] = slash
            length += 1
            var inParameters = false
            var keptPercent25 = false
            while index < count {
                let byte = path[index]
                if byte == slash { break }
                if byte == percent {
                    guard index + 2 < count, let high = PercentEncoding.hexValue(path[index + 1]), let low = PercentEncoding.hexValue(path[index + 2]) else {
                        if strict { return nil }
                        if !inParameters {
                            out[length] = byte
                            length += 1
                        }
                        index += 1
                        continue
                    }
                    let value = high << 4 | low
                    if strict && (value == slash || value == backslash || value == 0) { return nil }
                    if !inParameters {
                        if isUnreserved(value) {
                            out[length] = value
                            length += 1
                        } else {
                            out[length] = percent
                            out[length + 1] = upperHexDigit(high)
                            out[length + 2] = upperHexDigit(low)
                            length += 3
                            if value == percent { keptPercent25 = true }
                        }
                    }
                    index += 3
                    continue
                }
                if strict && (byte == backslash || byte == 0) { return nil }
                if byte == semicolon { inParameters = true }
                if !inParameters {
                    out[length] = byte
                    length += 1
                }
                index += 1
            }
            if strict && keptPercent25 && hasDoubleEncoding(out, from: segmentStart + 1, to: length) { return nil }

            let atEnd = index >= count
            let segmentLength = length - segmentStart - 1
            let isDot = segmentLength == 1 && out[segmentStart + 1] == dot
            let isDotDot = segmentLength == 2 && out[segmentStart + 1] == dot && out[segmentStart + 2] == dot
            if segmentLength == 0 || isDot || isDotDot {
                length = segmentStart
                if isDotDot {
                    // Drop the previous segment, if any: back to its `/`.
                    while length > 0 {
                        length -= 1
                        if out[length] == slash { break }
                    }
                }
                if atEnd {
                    out[length] = slash
                    length += 1
                }
            }
            if atEnd { return length }
            index += 1  // past the `/`
        }
    }

    /// Whether `%25` is followed by two hex digits within `out[start..<end]`. Only called in
    /// strict mode, where every `%` in the output starts a well-formed escape.
    private static func hasDoubleEncoding(_ out: UnsafeMutablePointer<UInt8>, from start: Int, to end: Int) -> Bool {
        var index = start
        while index + 4 < end {
            if out[index] == percent && out[index + 1] == UInt8(ascii: "2") && out[index + 2] == UInt8(ascii: "5")
                && PercentEncoding.hexValue(out[index + 3]) != nil && PercentEncoding.hexValue(out[index + 4]) != nil
            {
                return true
            }
            index += 1
        }
        return false
    }

    /// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
    @inline(__always)
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    @inline(__always)
    private static func upperHexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }
}

private let slash = UInt8(ascii: "/")
private let backslash = UInt8(ascii: "\\")
private let percent = UInt8(ascii: "%")
private let semicolon = UInt8(ascii: ";")
private let dot = UInt8(ascii: ".")
