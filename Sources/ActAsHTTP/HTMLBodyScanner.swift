/// The tokenizer half of `HTMLBodyInjector`: a resumable, byte-at-a-time subset of the
/// WHATWG HTML tokenizer (§13.2.5) plus the few tree-construction facts needed to know
/// where a browser opens `<body>`. It never buffers: all of its state fits in a few
/// integers, so a chunk boundary may fall on any byte.
///
/// What it models:
/// - data, tag open, tag name, every attribute state (quoted values hide `>`), self-closing;
/// - markup declarations: comments with all their end states (`<!-->`, `<!--->`, `--!>`),
///   DOCTYPE / `<?…>` / `<!…>` as bogus comments (all end at the first `>`), and CDATA
///   sections where the tokenizer allows them (inside `<svg>`/`<math>` in a `<template>`);
/// - RCDATA/RAWTEXT (`title`, `textarea`, `style`, `xmp`, `iframe`, `noembed`, `noframes`,
///   `noscript` — scripting is on) and the full script data states, including the
///   `<!--<script>…</script>-->` double escape;
/// - `<template>` content (nested), where nothing opens the body.
///
/// It reports where to insert: before a byte of the current chunk (or before the bytes it
/// asked to hold back), or that the document must be left alone.
struct HTMLBodyScanner: Sendable {
    enum Outcome: Equatable, Sendable {
        /// Nothing decided in this chunk.
        case needMore
        /// Insert before this index of the chunk; `-1`: before the held-back bytes of
        /// earlier chunks.
        case insert(before: Int)
        /// Never insert, and why.
        case disable(HTMLBodyInjector.Refusal)
    }

    enum State: UInt8, Sendable {
        case start, bom1, bom2, bomFE, bomFF
        case data, tagOpen, endTagOpen, tagName
        case beforeAttributeName, attributeName, afterAttributeName, beforeAttributeValue
        case attributeValueDoubleQuoted, attributeValueSingleQuoted, attributeValueUnquoted
        case afterAttributeValueQuoted, selfClosingStartTag
        case markupDeclarationOpen, markupDeclarationDash, markupDeclarationCDATA
        case bogusComment
        case commentStart, commentStartDash, comment, commentEndDash, commentEnd, commentEndBang
        case cdata, cdataBracket, cdataEnd
        case rawText, rawTextLessThan, rawTextEndTagName
        case scriptData, scriptLessThan, scriptEndTagName, scriptEscapeStart, scriptEscapeStartDash
        case scriptEscaped, scriptEscapedDash, scriptEscapedDashDash, scriptEscapedLessThan
        case scriptEscapedEndTagName, scriptDoubleEscapeStart, scriptDoubleEscaped
        case scriptDoubleEscapedDash, scriptDoubleEscapedDashDash, scriptDoubleEscapedLessThan
        case scriptDoubleEscapeEnd
        case plaintext
    }

    enum TagClass: UInt8, Sendable {
        case other
        case body, frameset, br
        case html, head, meta, link, base, basefont, bgsound
        case title, style, script, noscript, noframes, template
        case textarea, xmp, iframe, noembed, plaintext
        case svg, math
    }

    private(set) var state: State = .start
    /// Bytes from `holdStart` on (`-1`: from earlier chunks) may still need the insertion
    /// before them: a `<` whose tag is not classified yet, or a partial byte order mark.
    private(set) var holding = false
    private(set) var holdStart = 0

    private var isEndTag = false
    private var selfClosing = false
    private var tagClass = TagClass.other
    /// Lowercased tag name: first 8 bytes packed little-endian, the 9th, and the length
    /// (capped at 10: longer names are nothing we know).
    private var name: UInt64 = 0
    private var nameNinth: UInt8 = 0
    private var nameLength = 0
    /// The end tag that closes the current RCDATA/RAWTEXT/script element, packed like `name`.
    private var rawName: UInt64 = 0
    private var rawLength = 0
    /// Progress through `rawName` or `[CDATA[`.
    private var matched = 0
    private var templateDepth = 0
    /// `<svg>`/`<math>` nesting inside template content (only decides where CDATA exists).
    private var foreignDepth = 0

    init() {}

    /// True between tokens (or while holding), where markup appended at the end of the
    /// document would be parsed as markup.
    var atTokenBoundary: Bool {
        holding || state == .data || state == .start
    }

    // MARK: - Scanning

    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        if holding { holdStart = -1 }
        let n = bytes.count
        var i = 0
        while i < n {
            let b = bytes[i]
            switch state {
            case .start:
                switch b {
                case 0xEF: hold(at: i); state = .bom1; i &+= 1
                case 0xFE: hold(at: i); state = .bomFE; i &+= 1
                case 0xFF: hold(at: i); state = .bomFF; i &+= 1
                default: state = .data
                }
            case .bom1:
                guard b == 0xBB else { return .insert(before: holdStart) }
                state = .bom2; i &+= 1
            case .bom2:
                guard b == 0xBF else { return .insert(before: holdStart) }
                holding = false; state = .data; i &+= 1
            case .bomFE:
                return b == 0xFF ? .disable(.utf16) : .insert(before: holdStart)
            case .bomFF:
                return b == 0xFE ? .disable(.utf16) : .insert(before: holdStart)

            case .data:
                if templateDepth == 0 {
                    // Before the body: whitespace is all that may pass.
                    while i < n {
                        let c = bytes[i]
                        if c == .lt { break }
                        if !isHTMLWhitespace(c) { return .insert(before: i) }
                        i &+= 1
                    }
                    if i < n { hold(at: i); state = .tagOpen; i &+= 1 }
                } else {
                    i = ByteSkip.index(of: .lt, in: bytes, from: i)
                    if i < n { state = .tagOpen; i &+= 1 }
                }
            case .tagOpen:
                if isASCIIAlpha(b) {
                    beginTag(end: false, first: b); state = .tagName; i &+= 1
                } else if b == .exclamation {
                    holding = false; state = .markupDeclarationOpen; i &+= 1
                } else if b == .slash {
                    state = .endTagOpen; i &+= 1
                } else if b == .question {
                    holding = false; state = .bogusComment
                } else {
                    // A lone `<` is text.
                    if holding { return .insert(before: holdStart) }
                    state = .data
                }
            case .endTagOpen:
                if isASCIIAlpha(b) {
                    beginTag(end: true, first: b); state = .tagName; i &+= 1
                } else if b == .gt {
                    holding = false; state = .data; i &+= 1  // `</>` is dropped
                } else {
                    holding = false; state = .bogusComment
                }
            case .tagName:
                if isTagNameEnd(b) {
                    tagClass = classifyName()
                    if holding, let outcome = decideHeldTag() { return outcome }
                    i &+= 1
                    if b == .gt {
                        if emitTag() { return .insert(before: i) }
                    } else {
                        state = b == .slash ? .selfClosingStartTag : .beforeAttributeName
                    }
                } else {
                    appendName(b); i &+= 1
                    if holding {
                        if isEndTag {
                            if nameLength > 4 { holding = false }  // not body/html/br: ignored
                        } else if nameLength > 9 {
                            return .insert(before: holdStart)  // longer than any head element
                        }
                    }
                }

            // Attributes: all that matters is which `>` ends the tag.
            case .beforeAttributeName:
                if isHTMLWhitespace(b) {
                    i &+= 1
                } else if b == .slash {
                    state = .selfClosingStartTag; i &+= 1
                } else if b == .gt {
                    i &+= 1
                    if emitTag() { return .insert(before: i) }
                } else {
                    state = .attributeName; i &+= 1  // `=` here starts a name too
                }
            case .attributeName:
                if isHTMLWhitespace(b) {
                    state = .afterAttributeName; i &+= 1
                } else if b == .slash {
                    state = .selfClosingStartTag; i &+= 1
                } else if b == .equals {
                    state = .beforeAttributeValue; i &+= 1
                } else if b == .gt {
                    i &+= 1
                    if emitTag() { return .insert(before: i) }
                } else {
                    i &+= 1
                }
            case .afterAttributeName:
                if isHTMLWhitespace(b) {
                    i &+= 1
                } else if b == .slash {
                    state = .selfClosingStartTag; i &+= 1
                } else if b == .equals {
                    state = .beforeAttributeValue; i &+= 1
                } else if b == .gt {
                    i &+= 1
                    if emitTag() { return .insert(before: i) }
                } else {
                    state = .attributeName; i &+= 1
                }
            case .beforeAttributeValue:
                if isHTMLWhitespace(b) {
                    i &+= 1
                } else if b == .doubleQuote {
                    state = .attributeValueDoubleQuoted; i &+= 1
                } else if b == .singleQuote {
                    state = .attributeValueSingleQuoted; i &+= 1
                } else if b == .gt {
                    i &+= 1
                    if emitTag() { return .insert(before: i) }
                } else {
                    state = .attributeValueUnquoted
                }
            case .attributeValueDoubleQuoted:
                i = ByteSkip.index(of: .doubleQuote, in: bytes, from: i)
                if i < n { state = .afterAttributeValueQuoted; i &+= 1 }
            case .attributeValueSingleQuoted:
                i = ByteSkip.index(of: .singleQuote, in: bytes, from: i)
                if i < n { state = .afterAttributeValueQuoted; i &+= 1 }
            case .attributeValueUnquoted:
                if isHTMLWhitespace(b) {
                    state = .beforeAttributeName; i &+= 1
                } else if b == .gt {
                    i &+= 1
                    if emitTag() { return .insert(before: i) }
                } else {
                    i &+= 1
                }
            case .afterAttributeValueQuoted:
                if isHTMLWhitespace(b) {
                    state = .beforeAttributeName; i &+= 1
                } else if b == .slash {
                    state = .selfClosingStartTag; i &+= 1
                } else if b == .gt {
                    i &+= 1
                    if emitTag() { return .insert(before: i) }
                } else {
                    state = .beforeAttributeName
                }
            case .selfClosingStartTag:
                if b == .gt {
                    selfClosing = true; i &+= 1
                    if emitTag() { return .insert(before: i) }
                } else {
                    state = .beforeAttributeName
                }

            // `<!`: comments, CDATA; DOCTYPE and the rest end at the first `>` like bogus comments.
            case .markupDeclarationOpen:
                if b == .dash {
                    state = .markupDeclarationDash; i &+= 1
                } else if b == .leftBracket && templateDepth > 0 && foreignDepth > 0 {
                    matched = 1; state = .markupDeclarationCDATA; i &+= 1
                } else {
                    state = .bogusComment
                }
            case .markupDeclarationDash:
                if b == .dash { state = .commentStart; i &+= 1 } else { state = .bogusComment }
            case .markupDeclarationCDATA:
                if b == Self.cdataOpen.byte(matched) {
                    matched &+= 1; i &+= 1
                    if matched == 7 { state = .cdata }
                } else {
                    state = .bogusComment
                }
            case .bogusComment:
                i = ByteSkip.index(of: .gt, in: bytes, from: i)
                if i < n { state = .data; i &+= 1 }
            case .commentStart:
                if b == .dash {
                    state = .commentStartDash; i &+= 1
                } else if b == .gt {
                    state = .data; i &+= 1  // `<!-->`
                } else {
                    state = .comment
                }
            case .commentStartDash:
                if b == .dash {
                    state = .commentEnd; i &+= 1
                } else if b == .gt {
                    state = .data; i &+= 1  // `<!--->`
                } else {
                    state = .comment
                }
            case .comment:
                i = ByteSkip.index(of: .dash, in: bytes, from: i)
                if i < n { state = .commentEndDash; i &+= 1 }
            case .commentEndDash:
                if b == .dash { state = .commentEnd; i &+= 1 } else { state = .comment }
            case .commentEnd:
                if b == .gt {
                    state = .data; i &+= 1
                } else if b == .exclamation {
                    state = .commentEndBang; i &+= 1
                } else if b == .dash {
                    i &+= 1
                } else {
                    state = .comment
                }
            case .commentEndBang:
                if b == .dash {
                    state = .commentEndDash; i &+= 1
                } else if b == .gt {
                    state = .data; i &+= 1  // `--!>`
                } else {
                    state = .comment
                }
            case .cdata:
                i = ByteSkip.index(of: .rightBracket, in: bytes, from: i)
                if i < n { state = .cdataBracket; i &+= 1 }
            case .cdataBracket:
                if b == .rightBracket { state = .cdataEnd; i &+= 1 } else { state = .cdata }
            case .cdataEnd:
                if b == .rightBracket {
                    i &+= 1
                } else if b == .gt {
                    state = .data; i &+= 1
                } else {
                    state = .cdata
                }

            // RCDATA and RAWTEXT: only `</name` followed by whitespace, `/` or `>` ends them.
            case .rawText:
                i = ByteSkip.index(of: .lt, in: bytes, from: i)
                if i < n { state = .rawTextLessThan; i &+= 1 }
            case .rawTextLessThan:
                if b == .slash { matched = 0; state = .rawTextEndTagName; i &+= 1 } else { state = .rawText }
            case .rawTextEndTagName:
                if matched < rawLength {
                    if asciiLowercased(b) == rawName.byte(matched) { matched &+= 1; i &+= 1 } else { state = .rawText }
                } else if isTagNameEnd(b) {
                    closeRawElement(terminator: b); i &+= 1
                } else {
                    state = .rawText
                }

            // Script data, with its escape (`<!--`) and double escape (`<!--<script>`) states.
            case .scriptData:
                i = ByteSkip.index(of: .lt, in: bytes, from: i)
                if i < n { state = .scriptLessThan; i &+= 1 }
            case .scriptLessThan:
                if b == .slash {
                    matched = 0; state = .scriptEndTagName; i &+= 1
                } else if b == .exclamation {
                    state = .scriptEscapeStart; i &+= 1
                } else {
                    state = .scriptData
                }
            case .scriptEndTagName:
                if matched < 6 {
                    if asciiLowercased(b) == Self.script.byte(matched) { matched &+= 1; i &+= 1 } else { state = .scriptData }
                } else if isTagNameEnd(b) {
                    closeRawElement(terminator: b); i &+= 1
                } else {
                    state = .scriptData
                }
            case .scriptEscapeStart:
                if b == .dash { state = .scriptEscapeStartDash; i &+= 1 } else { state = .scriptData }
            case .scriptEscapeStartDash:
                if b == .dash { state = .scriptEscapedDashDash; i &+= 1 } else { state = .scriptData }
            case .scriptEscaped:
                i = ByteSkip.index(of: .dash, or: .lt, in: bytes, from: i)
                if i < n { state = bytes[i] == .dash ? .scriptEscapedDash : .scriptEscapedLessThan; i &+= 1 }
            case .scriptEscapedDash:
                state = b == .dash ? .scriptEscapedDashDash : b == .lt ? .scriptEscapedLessThan : .scriptEscaped
                i &+= 1
            case .scriptEscapedDashDash:
                if b == .lt {
                    state = .scriptEscapedLessThan
                } else if b == .gt {
                    state = .scriptData
                } else if b != .dash {
                    state = .scriptEscaped
                }
                i &+= 1
            case .scriptEscapedLessThan:
                if b == .slash {
                    matched = 0; state = .scriptEscapedEndTagName; i &+= 1
                } else if isASCIIAlpha(b) {
                    matched = 0; state = .scriptDoubleEscapeStart
                } else {
                    state = .scriptEscaped
                }
            case .scriptEscapedEndTagName:
                if matched < 6 {
                    if asciiLowercased(b) == Self.script.byte(matched) { matched &+= 1; i &+= 1 } else { state = .scriptEscaped }
                } else if isTagNameEnd(b) {
                    closeRawElement(terminator: b); i &+= 1
                } else {
                    state = .scriptEscaped
                }
            case .scriptDoubleEscapeStart:
                if matched < 6 {
                    if asciiLowercased(b) == Self.script.byte(matched) { matched &+= 1; i &+= 1 } else { state = .scriptEscaped }
                } else if isTagNameEnd(b) {
                    state = .scriptDoubleEscaped; i &+= 1
                } else {
                    state = .scriptEscaped
                }
            case .scriptDoubleEscaped:
                i = ByteSkip.index(of: .dash, or: .lt, in: bytes, from: i)
                if i < n { state = bytes[i] == .dash ? .scriptDoubleEscapedDash : .scriptDoubleEscapedLessThan; i &+= 1 }
            case .scriptDoubleEscapedDash:
                state = b == .dash ? .scriptDoubleEscapedDashDash : b == .lt ? .scriptDoubleEscapedLessThan : .scriptDoubleEscaped
                i &+= 1
            case .scriptDoubleEscapedDashDash:
                if b == .lt {
                    state = .scriptDoubleEscapedLessThan
                } else if b == .gt {
                    state = .scriptData
                } else if b != .dash {
                    state = .scriptDoubleEscaped
                }
                i &+= 1
            case .scriptDoubleEscapedLessThan:
                if b == .slash { matched = 0; state = .scriptDoubleEscapeEnd; i &+= 1 } else { state = .scriptDoubleEscaped }
            case .scriptDoubleEscapeEnd:
                if matched < 6 {
                    if asciiLowercased(b) == Self.script.byte(matched) { matched &+= 1; i &+= 1 } else { state = .scriptDoubleEscaped }
                } else if isTagNameEnd(b) {
                    state = .scriptEscaped; i &+= 1
                } else {
                    state = .scriptDoubleEscaped
                }

            case .plaintext:
                i = n
            }
        }
        return .needMore
    }

    // MARK: - Tags

    @inline(__always)
    private mutating func hold(at index: Int) {
        holding = true
        holdStart = index
    }

    @inline(__always)
    private mutating func beginTag(end: Bool, first: UInt8) {
        isEndTag = end
        selfClosing = false
        name = UInt64(asciiLowercased(first))
        nameLength = 1
    }

    @inline(__always)
    private mutating func appendName(_ byte: UInt8) {
        guard nameLength < 10 else { return }
        let lower = asciiLowercased(byte)
        if nameLength < 8 {
            name |= UInt64(lower) &<< UInt64(8 &* nameLength)
        } else if nameLength == 8 {
            nameNinth = lower
        }
        nameLength &+= 1
    }

    /// The end tag of the current RCDATA/RAWTEXT/script element: no effect beyond
    /// returning to data once its `>` comes (its attributes may still hide one).
    private mutating func closeRawElement(terminator: UInt8) {
        isEndTag = true
        selfClosing = false
        tagClass = .other
        switch terminator {
        case .gt: state = .data
        case .slash: state = .selfClosingStartTag
        default: state = .beforeAttributeName
        }
    }

    /// Before the body, a held `<tag` is decided once its name is complete.
    private mutating func decideHeldTag() -> Outcome? {
        if isEndTag {
            switch tagClass {
            case .body, .html, .br:
                return .insert(before: holdStart)  // they open the body implicitly
            default:
                holding = false  // ignored by the parser
                return nil
            }
        }
        switch tagClass {
        case .body, .html, .head, .meta, .link, .base, .basefont, .bgsound,
             .title, .style, .script, .noscript, .noframes, .template:
            holding = false
            return nil
        case .frameset:
            return .disable(.frameset)  // a frameset document has no body to put a banner in
        default:
            return .insert(before: holdStart)
        }
    }

    /// The tag's `>` has been consumed. Returns true when it was the body start tag.
    private mutating func emitTag() -> Bool {
        state = .data
        if templateDepth == 0 {
            guard !isEndTag else { return false }
            switch tagClass {
            case .body: return true
            case .script: state = .scriptData
            case .title, .style, .noscript, .noframes: enterRawText()
            case .template: templateDepth = 1; foreignDepth = 0
            default: break
            }
            return false
        }
        if isEndTag {
            switch tagClass {
            case .template: templateDepth &-= 1; foreignDepth = 0
            case .svg, .math: if foreignDepth > 0 { foreignDepth &-= 1 }
            default: break
            }
        } else {
            switch tagClass {
            case .template: templateDepth &+= 1
            case .script: state = .scriptData
            case .title, .textarea, .style, .xmp, .iframe, .noembed, .noframes, .noscript: enterRawText()
            case .plaintext: state = .plaintext
            case .svg, .math: if !selfClosing { foreignDepth &+= 1 }
            default: break
            }
        }
        return false
    }

    @inline(__always)
    private mutating func enterRawText() {
        rawName = name
        rawLength = nameLength
        state = .rawText
    }

    private func classifyName() -> TagClass {
        typealias N = Self
        switch nameLength {
        case 2:
            return name == N.br ? .br : .other
        case 3:
            return name == N.xmp ? .xmp : name == N.svg ? .svg : .other
        case 4:
            switch name {
            case N.body: return .body
            case N.html: return .html
            case N.head: return .head
            case N.meta: return .meta
            case N.link: return .link
            case N.base: return .base
            case N.math: return .math
            default: return .other
            }
        case 5:
            return name == N.title ? .title : name == N.style ? .style : .other
        case 6:
            return name == N.script ? .script : name == N.iframe ? .iframe : .other
        case 7:
            return name == N.bgsound ? .bgsound : name == N.noembed ? .noembed : .other
        case 8:
            switch name {
            case N.basefont: return .basefont
            case N.noscript: return .noscript
            case N.noframes: return .noframes
            case N.template: return .template
            case N.textarea: return .textarea
            case N.frameset: return .frameset
            default: return .other
            }
        case 9:
            return name == N.plaintex && nameNinth == UInt8(ascii: "t") ? .plaintext : .other
        default:
            return .other
        }
    }
}
