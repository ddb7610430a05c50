/// Credentials recognised by their form wherever they appear: in values, names, paths and free
/// text, whatever the field is called (SPEC §8: "any value that looks like a JWT or bearer
/// token"; issue 21 added the well-known issuer formats that scanners such as GitHub's secret
/// scanning look for, because people paste them into ordinary fields).
///
/// - JWT/JWS/JWE: `eyJ…` with three or more base64url segments.
/// - `Bearer <b64token>` (any case, not inside a word).
/// - ActAs API tokens: `actas_` + at least 16 base64url characters.
/// - GitHub: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` and `github_pat_`, each followed by at least
///   16 of `[A-Za-z0-9_]`.
/// - AWS access key ids: `AKIA`/`ASIA` + 16 of `[A-Z0-9]` (upper case, as AWS issues them).
/// - Slack: `xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xoxe-`, `xapp-` + at least 8 of `[A-Za-z0-9-]`.
/// - Stripe: `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_` + at least 8 alphanumerics.
/// - PEM private keys: `-----BEGIN … PRIVATE KEY…-----` (any case) up to and including the
///   matching `-----END …-----` line, or to the end of the text when there is none.
extension Redactor {
    /// Replaces every credential of the forms above inside `text` by `[REDACTED]`.
    /// Returns `text` itself (no copy) when there is nothing to replace.
    public func scrubTokens(_ text: String) -> String {
        Self.scrubOnce(text).map(Self.settled) ?? text
    }

    /// `scrubbed` (the output of a pass that found something) scrubbed again until nothing
    /// changes: a replaced token can join what was around it into a new one (a PEM label
    /// reaching `PRIVATE KEY`, found by FuzzRedactor). A pass never lengthens the text by
    /// much, and a few passes settle it.
    static func settled(_ scrubbed: String) -> String {
        var text = scrubbed
        for _ in 0..<8 {
            guard let again = scrubOnce(text) else { break }
            text = again
        }
        return text
    }

    static func scrubOnce(_ text: String) -> String? {
        let result: String?? = text.utf8.withContiguousStorageIfAvailable { scrubTokens(bytes: $0) }
        if let result { return result }
        return Array(text.utf8).withUnsafeBufferPointer { scrubTokens(bytes: $0) }
    }

    static func scrubTokens(bytes: [UInt8]) -> String? {
        bytes.withUnsafeBufferPointer { scrubTokens(bytes: $0) }
    }

    /// nil when nothing was found.
    static func scrubTokens(bytes: UnsafeBufferPointer<UInt8>) -> String? {
        // Every token form needs one of these bytes (a JWT its dots, a bearer credential its
        // blank, the prefixed tokens their `_` or `-`, a PEM block its dashes, an AWS key id
        // its `A`); most logged text has none and is done in one pass.
        var mayHoldToken = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "."), UInt8(ascii: " "), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "A"), 0x09:
                mayHoldToken = true
            default:
                continue
            }
            break
        }
        if !mayHoldToken { return nil }
        var spans: [Range<Int>] = []
        var index = 0
        let count = bytes.count
        while index < count {
            if let end = tokenEnd(bytes, at: index) {
                spans.append(index..<end)
                index = end
            } else {
                index += 1
            }
        }
        if spans.isEmpty { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var position = 0
        for span in spans {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[position..<span.lowerBound]))
            out.append(contentsOf: placeholder.utf8)
            position = span.upperBound
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[position..<count]))
        return String(decoding: out, as: UTF8.self)
    }

    /// The end of a credential starting at `index`, or nil.
    @inline(__always)
    private static func tokenEnd(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int? {
        switch bytes[index] {
        case UInt8(ascii: "e"):
            if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "y"), bytes[index + 2] == UInt8(ascii: "J") {
                return jwtEnd(bytes, from: index)
            }
            return nil
        case UInt8(ascii: "b"), UInt8(ascii: "B"):
            return bearerEnd(bytes, from: index)
        case UInt8(ascii: "a"):
            return apiTokenEnd(bytes, from: index)
        case UInt8(ascii: "A"):
            return apiTokenEnd(bytes, from: index) ?? awsKeyIDEnd(bytes, from: index)
        case UInt8(ascii: "g"):
            return prefixedEnd(bytes, from: index, prefixes: githubPrefixes, minimum: 16, allowed: isWordCharacter)
        case UInt8(ascii: "x"):
            return prefixedEnd(bytes, from: index, prefixes: slackPrefixes, minimum: 8, allowed: isSlackCharacter)
        case UInt8(ascii: "s"), UInt8(ascii: "r"):
            return prefixedEnd(bytes, from: index, prefixes: stripePrefixes, minimum: 8, allowed: isAlphanumeric)
        case UInt8(ascii: "-"):
            return privateKeyEnd(bytes, from: index)
        default:
            return nil
        }
    }

    private static let githubPrefixes: [[UInt8]] = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"].map { Array($0.utf8) }
    private static let slackPrefixes: [[UInt8]] =
        ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xapp-"].map { Array($0.utf8) }
    private static let stripePrefixes: [[UInt8]] = ["sk_live_", "sk_test_", "rk_live_", "rk_test_"].map { Array($0.utf8) }

    @inline(__always)
    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "_"): return true
        default: return false
        }
    }

    @inline(__always)
    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        default: return false
        }
    }

    private static func isWordCharacter(_ byte: UInt8) -> Bool { isAlphanumeric(byte) || byte == UInt8(ascii: "_") }
    private static func isSlackCharacter(_ byte: UInt8) -> Bool { isAlphanumeric(byte) || byte == UInt8(ascii: "-") }

    /// One of `prefixes` (exact case) followed by at least `minimum` bytes that `allowed` accepts.
    private static func prefixedEnd(
        _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, prefixes: [[UInt8]], minimum: Int, allowed: (UInt8) -> Bool
    ) -> Int? {
        for prefix in prefixes where start + prefix.count + minimum <= bytes.count {
            var matches = true
            for offset in 0..<prefix.count where bytes[start + offset] != prefix[offset] {
                matches = false
                break
            }
            if !matches { continue }
            var index = start + prefix.count
            while index < bytes.count && allowed(bytes[index]) { index += 1 }
            if index - (start + prefix.count) >= minimum { return index }
        }
        return nil
    }

    /// `AKIA`/`ASIA` + 16 upper-case letters or digits (and any more that follow).
    private static func awsKeyIDEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard start + 20 <= bytes.count,
            bytes[start + 1] == UInt8(ascii: "K") || bytes[start + 1] == UInt8(ascii: "S"),
            bytes[start + 2] == UInt8(ascii: "I"), bytes[start + 3] == UInt8(ascii: "A")
        else { return nil }
        var index = start + 4
        while index < bytes.count, (0x30...0x39).contains(bytes[index]) || (0x41...0x5A).contains(bytes[index]) { index += 1 }
        return index - (start + 4) >= 16 ? index : nil
    }

    /// `-----BEGIN <label>-----` where the label contains `PRIVATE KEY` (any case): up to the
    /// end of the next `-----END …-----`, or the end of the text (a cut-off key is still a key).
    private static func privateKeyEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        let begin = Array("-----begin".utf8)
        guard start + begin.count < bytes.count, matchesFolded(bytes, at: start, begin) else { return nil }
        // The label runs to the next "-----" on the same line (at most 80 bytes).
        var index = start + begin.count
        let labelStart = index
        while index < bytes.count && index - labelStart <= 80 && bytes[index] != UInt8(ascii: "-") && bytes[index] != 0x0A {
            index += 1
        }
        let label = UnsafeBufferPointer(rebasing: bytes[labelStart..<index])
        guard containsFolded(label, Array("private key".utf8)) else { return nil }
        let end = Array("-----end".utf8)
        var search = index
        while search + end.count <= bytes.count {
            if bytes[search] == UInt8(ascii: "-") && matchesFolded(bytes, at: search, end) {
                var close = search + end.count
                while close < bytes.count && bytes[close] != UInt8(ascii: "-") && bytes[close] != 0x0A { close += 1 }
                while close < bytes.count && bytes[close] == UInt8(ascii: "-") { close += 1 }
                return close
            }
            search += 1
        }
        return bytes.count
    }

    @inline(__always)
    private static func matchesFolded(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int, _ lowered: [UInt8]) -> Bool {
        guard start + lowered.count <= bytes.count else { return false }
        for offset in 0..<lowered.count {
            let byte = bytes[start + offset]
            let folded = (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
            if folded != lowered[offset] { return false }
        }
        return true
    }

    private static func containsFolded(_ bytes: UnsafeBufferPointer<UInt8>, _ lowered: [UInt8]) -> Bool {
        guard bytes.count >= lowered.count else { return false }
        for start in 0...(bytes.count - lowered.count) where matchesFolded(bytes, at: start, lowered) { return true }
        return false
    }

    /// `eyJ<seg>.<seg>.<seg>` (segments after the first may be empty), plus further `.seg`s (JWE).
    private static func jwtEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        while index < bytes.count && isBase64URL(bytes[index]) { index += 1 }
        guard index - start >= 4 else { return nil }
        var segments = 1
        while index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count && isBase64URL(bytes[index]) { index += 1 }
            segments += 1
        }
        return segments >= 3 ? index : nil
    }

    /// `Bearer` (any case, not inside a word), blanks, then an RFC 6750 b64token.
    private static func bearerEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        let word: StaticString = "bearer"
        guard start + 6 < bytes.count else { return nil }
        if start > 0 && isAlphanumeric(bytes[start - 1]) { return nil }
        for offset in 0..<6 where bytes[start + offset] | 0x20 != word.utf8Start[offset] { return nil }
        var index = start + 6
        guard bytes[index] == 0x20 || bytes[index] == 0x09 else { return nil }
        while index < bytes.count && (bytes[index] == 0x20 || bytes[index] == 0x09) { index += 1 }
        let tokenStart = index
        while index < bytes.count {
            switch bytes[index] {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                index += 1
                continue
            default:
                break
            }
            break
        }
        guard index > tokenStart else { return nil }
        while index < bytes.count && bytes[index] == UInt8(ascii: "=") { index += 1 }
        return index
    }

    /// `actas_` followed by at least 16 base64url characters (real tokens have 43), so names such
    /// as the `__Host-actas_session` cookie stay readable.
    private static func apiTokenEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        let prefix: StaticString = "actas_"
        guard start + 6 < bytes.count else { return nil }
        for offset in 0..<6 {
            let byte = bytes[start + offset]
            let folded = (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
            if folded != prefix.utf8Start[offset] { return nil }
        }
        var index = start + 6
        while index < bytes.count && isBase64URL(bytes[index]) { index += 1 }
        return index - (start + 6) >= 16 ? index : nil
    }
}
