/// The tag names HTMLBodyScanner tells apart, each packed little-endian into a UInt64 (up to
/// eight bytes; `plaintext` is `plaintex` plus its ninth byte).
extension HTMLBodyScanner {
    static let br = pack("br"), xmp = pack("xmp"), svg = pack("svg")
    static let body = pack("body"), html = pack("html"), head = pack("head"), meta = pack("meta")
    static let link = pack("link"), base = pack("base"), math = pack("math")
    static let title = pack("title"), style = pack("style"), script = pack("script"), iframe = pack("iframe")
    static let bgsound = pack("bgsound"), noembed = pack("noembed")
    static let basefont = pack("basefont"), noscript = pack("noscript"), noframes = pack("noframes")
    static let template = pack("template"), textarea = pack("textarea"), frameset = pack("frameset")
    static let plaintex = pack("plaintex")
    static let cdataOpen = pack("[CDATA[")

    static func pack(_ text: StaticString) -> UInt64 {
        precondition(text.utf8CodeUnitCount <= 8)
        var value: UInt64 = 0
        for k in 0..<text.utf8CodeUnitCount {
            value |= UInt64(text.utf8Start[k]) &<< UInt64(8 * k)
        }
        return value
    }
}
