/// `%XX` decoding, shared by everything that reads URLs and forms (paths, return paths, form
/// fields, log redaction), so they all agree on what a name or path says.
public enum PercentEncoding {
    @inlinable @inline(__always)
    public static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte &- UInt8(ascii: "A") &+ 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte &- UInt8(ascii: "a") &+ 10
        default: return nil
        }
    }

    /// One round of decoding: `%XX` becomes its byte, a malformed escape (`%`, `%4`, `%zz`)
    /// stays as written, and with `plusAsSpace` (forms, WHATWG URL §5) `+` becomes a space.
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, plusAsSpace: Bool = false) -> [UInt8] where Bytes.Index == Int {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < bytes.endIndex,
               let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(plusAsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index += 1
            }
        }
        return out
    }

    /// Whether `bytes` decode (one round, malformed escapes kept as written) to well-formed
    /// UTF-8 (RFC 3629: no overlong forms such as `%C0%AE` for `.`, no surrogates, nothing past
    /// U+10FFFF). Applications that decode leniently read `%C0%AF` as `/` and `%C0%AE%C0%AE` as
    /// `..`, so a path that does not decode to valid UTF-8 cannot be trusted to mean one thing.
    public static func decodesToValidUTF8<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool where Bytes.Index == Int {
        if !bytes.contains(where: { $0 == UInt8(ascii: "%") || $0 >= 0x80 }) { return true }
        return String(validating: decode(bytes), as: UTF8.self) != nil
    }

    /// The same, as text (invalid UTF-8 becomes U+FFFD).
    public static func decodeString<Bytes: Collection<UInt8>>(_ bytes: Bytes, plusAsSpace: Bool = false) -> String where Bytes.Index == Int {
        String(decoding: decode(bytes, plusAsSpace: plusAsSpace), as: UTF8.self)
    }
}
