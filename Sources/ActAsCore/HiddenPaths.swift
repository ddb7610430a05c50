/// `impersonation.hidden_paths` (SPEC §7): paths answered with `403 hidden_path` while
/// impersonating. Match against the output of `PathNormalizer`, never the raw path.
///
/// A path is hidden when a pattern matches it, or matches how lenient servers read it
/// (`lookalike`): Windows, IIS and some frameworks drop trailing dots and spaces from a segment
/// (`/private./x`, `/private%20/x` are `/private/x` there), and apps that compare names
/// case-insensitively with full Unicode case mapping read `ı` as `I`, `ſ` as `S` and `K`
/// (Kelvin) as `k`. The lookalike only decides the refusal; the path forwarded is unchanged.
public struct HiddenPaths: Sendable, Equatable {
    public let patterns: [PathPattern]
    public let caseSensitive: Bool

    /// Patterns are normalised like request paths (so `/a%7eb/*` or `/private//*` can match at
    /// all), then compared case-insensitively (ASCII only) unless `caseSensitive`
    /// (`paths_case_sensitive`).
    public init(_ patterns: [String], caseSensitive: Bool = false) {
        self.caseSensitive = caseSensitive
        self.patterns = patterns.map { pattern in
            PathPattern(PathNormalizer.normalized(pattern, strict: false) ?? pattern, caseSensitive: caseSensitive)
        }
    }

    public var isEmpty: Bool { patterns.isEmpty }

    public func isHidden(_ normalizedPath: UnsafeRawBufferPointer) -> Bool {
        if matchesAny(normalizedPath) { return true }
        guard !patterns.isEmpty, let variant = Self.lookalike(normalizedPath, foldCase: !caseSensitive) else { return false }
        return variant.withUnsafeBytes { matchesAny($0) }
    }

    public func isHidden(_ normalizedPath: String) -> Bool {
        var path = normalizedPath
        return path.withUTF8 { isHidden(UnsafeRawBufferPointer($0)) }
    }

    private func matchesAny(_ path: UnsafeRawBufferPointer) -> Bool {
        for pattern in patterns where pattern.matches(path) { return true }
        return false
    }

    /// The normalised path as lenient servers read it, or nil when that is the path itself:
    /// trailing `.`, space and `%20` removed from every segment (a segment left empty is
    /// dropped), and with `foldCase`, each encoded non-ASCII character whose upper or lower case
    /// is ASCII replaced by that ASCII in lower case.
    public static func lookalike(_ path: UnsafeRawBufferPointer, foldCase: Bool) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        var changed = false
        var index = 0
        while index < path.count {
            // One segment: from after a `/` to the next `/`.
            let start = index
            var end = start
            while end < path.count, path[end] != slash || end == start { end += 1 }
            let segmentStart = out.count
            var i = start
            while i < end {
                if foldCase, path[i] == percent, let (folded, consumed) = foldEncodedRun(path, from: i, to: end) {
                    out.append(contentsOf: folded)
                    i += consumed
                    changed = true
                } else {
                    out.append(path[i])
                    i += 1
                }
            }
            // Trailing dots and spaces (`%20`), in any mix.
            var trimmed = false
            while out.count > segmentStart + 1 {
                if out.last == dot || out.last == space {
                    out.removeLast()
                } else if out.count >= segmentStart + 4, out[out.count - 3] == percent, out[out.count - 2] == UInt8(ascii: "2"),
                          out[out.count - 1] == UInt8(ascii: "0") {
                    out.removeLast(3)
                } else {
                    break
                }
                trimmed = true
            }
            if trimmed {
                changed = true
                // Emptied (`/..../`): merged away like `//`, unless it is the whole path.
                if out.count == segmentStart + 1, out[segmentStart] == slash, end < path.count { out.removeLast() }
            }
            index = end
        }
        return changed ? out : nil
    }

    /// A run of `%XX` escapes of non-ASCII bytes starting at `from`, decoded as UTF-8 and
    /// re-encoded with ASCII-cased characters folded: nil when nothing in it folds.
    private static func foldEncodedRun(_ path: UnsafeRawBufferPointer, from: Int, to end: Int) -> ([UInt8], Int)? {
        var bytes: [UInt8] = []
        var i = from
        while i + 2 < end, path[i] == percent, let high = PercentEncoding.hexValue(path[i + 1]),
              let low = PercentEncoding.hexValue(path[i + 2]), high >= 8 {
            bytes.append(high << 4 | low)
            i += 3
        }
        guard !bytes.isEmpty else { return nil }
        var out: [UInt8] = []
        var folded = false
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            if let ascii = asciiCaseOf(scalar) {
                out.append(contentsOf: ascii)
                folded = true
            } else {
                for byte in String(scalar).utf8 {
                    out.append(percent)
                    out.append(upperHex(byte >> 4))
                    out.append(upperHex(byte & 0xF))
                }
            }
        }
        return folded ? (out, i - from) : nil
    }

    /// `ı` → `i`, `ſ` → `s`, `K` → `k`, `ﬀ` → `ff`: the lower-cased ASCII that a non-ASCII
    /// character becomes under full Unicode case mapping, if any.
    static func asciiCaseOf(_ scalar: Unicode.Scalar) -> [UInt8]? {
        guard !scalar.isASCII else { return nil }
        let character = String(scalar)
        for mapped in [character.uppercased(), character.lowercased()] where mapped.utf8.allSatisfy({ $0 < 0x80 }) {
            return mapped.utf8.map(asciiLower)
        }
        return nil
    }

    private static func upperHex(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }
}

private let slash = UInt8(ascii: "/")
private let percent = UInt8(ascii: "%")
private let dot = UInt8(ascii: ".")
private let space = UInt8(ascii: " ")
