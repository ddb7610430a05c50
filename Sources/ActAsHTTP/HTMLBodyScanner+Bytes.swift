// The bytes and byte classes HTMLBodyScanner's tokenizer works with.

extension UInt64 {
    @inline(__always)
    func byte(_ k: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: self &>> UInt64(8 &* k))
    }
}

extension UInt8 {
    static let lt = UInt8(ascii: "<")
    static let gt = UInt8(ascii: ">")
    static let slash = UInt8(ascii: "/")
    static let exclamation = UInt8(ascii: "!")
    static let question = UInt8(ascii: "?")
    static let dash = UInt8(ascii: "-")
    static let equals = UInt8(ascii: "=")
    static let doubleQuote = UInt8(ascii: "\"")
    static let singleQuote = UInt8(ascii: "'")
    static let leftBracket = UInt8(ascii: "[")
    static let rightBracket = UInt8(ascii: "]")
}

/// HTML whitespace as the tokenizer sees it: TAB, LF, FF, CR (normalised to LF), SPACE.
@inline(__always)
func isHTMLWhitespace(_ byte: UInt8) -> Bool {
    byte <= 0x20 && (0x1_0000_3600 as UInt64) &>> UInt64(byte) & 1 == 1
}

/// Ends a tag name (and an appropriate end tag name): whitespace, `/`, `>`.
@inline(__always)
func isTagNameEnd(_ byte: UInt8) -> Bool {
    isHTMLWhitespace(byte) || byte == .slash || byte == .gt
}

@inline(__always)
func isASCIIAlpha(_ byte: UInt8) -> Bool {
    (byte | 0x20) &- UInt8(ascii: "a") < 26
}
