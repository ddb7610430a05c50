// Byte classes from RFC 9110 §5.6.2 (tchar) and §5.5 (field values).

@usableFromInline
enum ASCII {
    @usableFromInline static let tab: UInt8 = 0x09
    @usableFromInline static let lf: UInt8 = 0x0A
    @usableFromInline static let cr: UInt8 = 0x0D
    @usableFromInline static let space: UInt8 = 0x20
    @usableFromInline static let colon: UInt8 = 0x3A
    @usableFromInline static let semicolon: UInt8 = 0x3B
    @usableFromInline static let comma: UInt8 = 0x2C
}

/// `tchar` as a 128-bit mask: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA.
/// Checked against the RFC's list by `CharacterClassTests`.
@inlinable
func isTokenChar(_ byte: UInt8) -> Bool {
    if byte < 64 {
        return (0x03FF_6CFA_0000_0000 as UInt64) &>> UInt64(byte) & 1 == 1
    }
    if byte < 128 {
        return (0x57FF_FFFF_C7FF_FFFE as UInt64) &>> UInt64(byte &- 64) & 1 == 1
    }
    return false
}

/// field-vchar / SP / HTAB / obs-text: everything but NUL, CR, LF, other controls and DEL.
@inlinable
func isFieldValueChar(_ byte: UInt8) -> Bool {
    byte == ASCII.tab || (byte >= 0x20 && byte != 0x7F)
}

@inlinable
func isOptionalWhitespace(_ byte: UInt8) -> Bool {
    byte == ASCII.space || byte == ASCII.tab
}

@inlinable
func hexDigitValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte &- UInt8(ascii: "a") &+ 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte &- UInt8(ascii: "A") &+ 10
    default: return nil
    }
}

@inlinable
func asciiLowercased(_ byte: UInt8) -> UInt8 {
    (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
}

/// Exposed for tests only.
public enum CharacterClasses {
    public static func isToken(_ byte: UInt8) -> Bool { isTokenChar(byte) }
    public static func isFieldValue(_ byte: UInt8) -> Bool { isFieldValueChar(byte) }
}
