/// Pure decisions about an upstream's response that the proxy makes before it reaches a
/// browser: which `Set-Cookie`s the upstream may never send (SPEC §7), whether a document
/// shown as the impersonated user can carry the banner, and where a `Location`-like header
/// exposes the upstream's own address (SPEC §9). No I/O; the proxy's handlers call these.

// MARK: - cookies

/// The cookie a `Set-Cookie` value sets, as a browser reads it (RFC 6265bis §5.6).
public enum SetCookieName {
    /// The name: the first `;`-part up to its first `=`, space and tab trimmed. Without `=`
    /// the cookie is nameless (the whole part is its value): then that text is returned, so
    /// a caller comparing names still sees what the browser would send back.
    public static func name<C: Collection>(_ value: C) -> [UInt8] where C.Element == UInt8 {
        var pair = value.prefix { $0 != UInt8(ascii: ";") }
        if let eq = pair.firstIndex(of: UInt8(ascii: "=")) { pair = pair[..<eq] }
        return trimmed(Array(pair))
    }

    /// Whether the upstream tries to set one of the proxy's cookies (`__Host-actas_session`,
    /// `__Host-actas_login`, `__Host-actas_oidc`): any name that is, in any case, `actas_…`
    /// or `actas-…`, or `__Host-actas…` / `__Secure-actas…`. The whole namespace is the
    /// proxy's, so a future cookie of its own is covered, and case variants too (browsers
    /// match the `__Host-` prefix case-insensitively; the proxy reads its cookies likewise).
    public static func isProxyOwned<C: Collection>(_ setCookie: C) -> Bool where C.Element == UInt8 {
        let found = name(setCookie)
        if !found.isEmpty { return isProxyOwnedName(found) }
        // `=__Host-actas_session=X` is nameless with the value `__Host-actas_session=X`, which
        // a browser sends back as it is: judge the name that value spells.
        let pair = setCookie.prefix { $0 != UInt8(ascii: ";") }
        guard let eq = pair.firstIndex(of: UInt8(ascii: "=")) else { return false }
        return isProxyOwnedName(name(pair[pair.index(after: eq)...]))
    }

    public static func isProxyOwnedName(_ name: [UInt8]) -> Bool {
        let lower = name.map { ($0 >= 0x41 && $0 <= 0x5A) ? $0 | 0x20 : $0 }
        for prefix in ownedPrefixes where lower.starts(with: prefix) { return true }
        return false
    }

    /// RFC 6265 §4.1.1: a cookie name is an RFC 2616 token (visible ASCII but separators).
    public static func isToken(_ name: [UInt8]) -> Bool {
        !name.isEmpty && name.allSatisfy { byte in
            byte > 0x20 && byte < 0x7F && !separators.contains(byte)
        }
    }

    static let ownedPrefixes: [[UInt8]] = ["actas_", "actas-", "__host-actas", "__secure-actas"].map { Array($0.utf8) }
    static let separators: Set<UInt8> = Set("()<>@,;:\\\"/[]?={} \t".utf8)

    static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        let isBlank = { (b: UInt8) in b == 0x20 || b == 0x09 }
        guard let first = bytes.firstIndex(where: { !isBlank($0) }) else { return [] }
        let last = bytes.lastIndex(where: { !isBlank($0) })!
        return Array(bytes[first...last])
    }
}

// MARK: - documents shown while impersonating

/// Whether a response to a page load made while impersonating can be shown with the banner
/// (SPEC §7: every HTML page), must pass as it is, or must be refused because a browser
/// would render it as a document the proxy cannot put the banner in.
public enum DocumentVerdict: Equatable, Sendable {
    /// Not a document that needs the banner (not HTML, a download, a script's fetch…).
    case pass
    /// HTML to rewrite, after decoding this content coding.
    case rewrite(ContentCoding)
    /// A navigation would show the target's document without the banner: refuse it, for
    /// this reason (a sentence for the log).
    case refuse(String)

    public enum ContentCoding: Equatable, Sendable {
        case identity, gzip, deflate
    }

    /// - Parameters:
    ///   - contentTypes, contentEncodings, contentDispositions: every field of that name, raw.
    ///   - navigation: the browser shows the answer as a document (SPEC §7's navigation);
    ///     only then is anything refused. Other page loads get the banner when they can.
    public static func decide(
        status: Int, isHead: Bool, emptyBody: Bool, contentTypes: [String], contentEncodings: [String],
        contentDispositions: [String], navigation: Bool
    ) -> DocumentVerdict {
        decide(status: status, isHead: isHead, emptyBody: emptyBody, contentTypes: contentTypes, contentEncodings: contentEncodings,
               contentDispositions: contentDispositions, navigation: navigation, shortcut: true)
    }

    /// `shortcut: false` takes the full parse for every type (a unit test compares the two).
    static func decide(
        status: Int, isHead: Bool, emptyBody: Bool, contentTypes: [String], contentEncodings: [String],
        contentDispositions: [String], navigation: Bool, shortcut: Bool
    ) -> DocumentVerdict {
        guard !isHead, !emptyBody, status >= 200, status != 204, status != 304 else { return .pass }
        // A navigation never asks for a range: a partial answer to one is a document the
        // rewriter cannot give a banner (its Content-Range would lie).
        if status == 206 { return navigation ? .refuse("a partial (206) answer to a navigation") : .pass }
        // A download is saved, not shown; the banner would put the session's exit CSRF token
        // into the file.
        if contentDispositions.contains(where: { dispositionType($0) == "attachment" }) { return .pass }
        let refuse = { (why: String) in navigation ? DocumentVerdict.refuse(why) : .pass }

        // Browsers join repeated fields and use the last type of the list: two different types
        // (or charsets) make the answer ambiguous; a repeated one with or without a charset
        // (`text/html` and `text/html; charset=utf-8`) is not.
        if shortcut, contentTypes.count == 1, let essence = plainASCIIEssence(contentTypes[0]), !essence.isEmpty,
           !htmlEssences.contains(essence), !isXML(essence) {
            return .pass  // one type that is neither HTML nor XML: the common answer, decided without parsing
        }
        let types = contentTypes.flatMap { splitOnByte($0, ",") }.map(normalisedType).filter { !$0.isEmpty }
        guard let type = types.first else { return .pass }  // no type: `nosniff` keeps it from being sniffed as HTML
        let essence = essenceOf(type)
        if types.contains(where: { essenceOf($0) != essence }) || Set(types.compactMap(charset)).count > 1 {
            return refuse("conflicting Content-Type fields")
        }
        guard htmlEssences.contains(essence) else {
            if isXML(essence) { return refuse("an XML document (\(essence)) has no place for the banner") }
            return .pass
        }
        if let label = types.compactMap(charset).first, utf16Labels.contains(label) {
            return refuse("a UTF-16 page (charset \(label))")
        }
        let codings = contentEncodings.flatMap { splitOnByte($0, ",") }
            .map { $0.trimmingBlanks().lowercased() }.filter { !$0.isEmpty && $0 != "identity" }
        switch codings {
        case []: return .rewrite(.identity)
        case ["gzip"], ["x-gzip"]: return .rewrite(.gzip)
        case ["deflate"]: return .rewrite(.deflate)
        default: return refuse("Content-Encoding \(codings.joined(separator: ", ")) cannot be rewritten")
        }
    }

    /// Documents the banner goes into.
    static let htmlEssences: Set<String> = ["text/html", "application/xhtml+xml"]

    /// Documents a browser renders as XML, where the banner has no place.
    static func isXML(_ essence: String) -> Bool {
        ["text/xml", "application/xml", "image/svg+xml", "text/xsl"].contains(essence) || essence.hasSuffix("+xml")
    }

    /// The lower-case type before any parameter of a field that is one ASCII type (no comma);
    /// nil otherwise, for the full parse.
    static func plainASCIIEssence(_ field: String) -> String? {
        var bytes: [UInt8] = []
        guard field.utf8.allSatisfy({ $0 < 0x80 && $0 != UInt8(ascii: ",") }) else { return nil }
        for byte in field.utf8 {
            if byte == UInt8(ascii: ";") { break }
            bytes.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
        }
        var low = 0, high = bytes.count
        while low < high && (bytes[low] == 0x20 || bytes[low] == 0x09) { low += 1 }
        while high > low && (bytes[high - 1] == 0x20 || bytes[high - 1] == 0x09) { high -= 1 }
        return String(decoding: bytes[low..<high], as: UTF8.self)
    }

    /// Lower case, without blanks around the type and its parameters.
    static func normalisedType(_ field: Substring) -> String {
        splitOnByte(field, ";").map { $0.trimmingBlanks().lowercased() }.joined(separator: ";")
    }

    /// The parts between `separator` bytes. HTTP separates by byte; a split by Character keeps
    /// `;` and a combining mark after it together (`text/html;\u{301}` would not be HTML).
    static func splitOnByte<S: StringProtocol>(_ text: S, _ separator: Unicode.Scalar) -> [Substring] {
        Substring(text).utf8.split(separator: UInt8(separator.value), omittingEmptySubsequences: true).map { Substring($0) }
    }

    /// A normalised type's part before its first `;` byte.
    static func essenceOf(_ normalisedType: String) -> String {
        String(decoding: normalisedType.utf8.prefix { $0 != UInt8(ascii: ";") }, as: UTF8.self)
    }

    /// The `charset` parameter, unquoted, lower case.
    static func charset(_ normalisedType: String) -> String? {
        for parameter in splitOnByte(normalisedType, ";").dropFirst() {
            let parts = parameter.utf8.split(separator: UInt8(ascii: "="), maxSplits: 1).map { Substring($0) }
            guard parts.count == 2, parts[0].trimmingBlanks() == "charset" else { continue }
            var value = parts[1].trimmingBlanks()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    static func dispositionType(_ field: String) -> String {
        Substring(field.utf8.prefix { $0 != UInt8(ascii: ";") }).trimmingBlanks().lowercased()
    }

    /// WHATWG Encoding labels of UTF-16LE and UTF-16BE.
    static let utf16Labels: Set<String> = [
        "unicodefffe", "utf-16be", "csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16", "utf-16le",
    ]
}

extension StringProtocol {
    func trimmingBlanks() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}

// MARK: - Location

/// The upstream's own address, to recognise it in `Location`, `Content-Location` and
/// `Refresh` (SPEC §9) and put the public origin in its place.
public struct UpstreamAddress: Sendable {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        var host = host.lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = port
    }

    /// `url` with `scheme://authority` replaced by `publicOrigin` when the authority is the
    /// upstream's (any scheme; scheme-relative `//…` too; `\` read as `/` as browsers do);
    /// nil when it points elsewhere or is relative.
    public func rewrite(_ url: String, publicOrigin: String) -> String? {
        var rest = Substring(url.trimmingBlanks())
        var scheme: String?
        if let colon = rest.firstIndex(of: ":"), let first = rest.first, first.isASCII, first.isLetter,
           rest[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") }) {
            scheme = rest[..<colon].lowercased()
            rest = rest[rest.index(after: colon)...]
        }
        let slashes = rest.prefix { $0 == "/" || $0 == "\\" }.count
        // Without a scheme it needs `//`; browsers skip any number of slashes after a
        // special scheme, and take even none as an authority unless the scheme is the page's own.
        if scheme == nil, slashes < 2 { return nil }
        if let scheme, scheme == "https", slashes == 0 { return nil }
        if let scheme, !Self.specialSchemes.contains(scheme), slashes < 2 { return nil }
        rest = rest.dropFirst(slashes)
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "\\" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        guard let (host, port) = Self.hostAndPort(authority, defaultPort: Self.defaultPort(scheme)), matches(host: host, port: port) else {
            return nil
        }
        var tail = String(rest[authorityEnd...])
        let pathEnd = tail.firstIndex { $0 == "?" || $0 == "#" } ?? tail.endIndex
        tail = tail[..<pathEnd].replacingBackslashes() + tail[pathEnd...]
        if !tail.hasPrefix("/") { tail = "/" + tail }
        return publicOrigin + tail
    }

    /// A `Refresh` value (`5; url=…`, `0;URL='…'`) with its URL rewritten; nil when unchanged.
    public func rewriteRefresh(_ value: String, publicOrigin: String) -> String? {
        guard let separator = value.firstIndex(where: { $0 == ";" || $0 == "," }) else { return nil }
        var start = value.index(after: separator)
        func skipBlanks() { while start < value.endIndex, value[start] == " " || value[start] == "\t" { start = value.index(after: start) } }
        skipBlanks()
        if value[start...].lowercased().hasPrefix("url") {
            var probe = value.index(start, offsetBy: 3)
            while probe < value.endIndex, value[probe] == " " || value[probe] == "\t" { probe = value.index(after: probe) }
            if probe < value.endIndex, value[probe] == "=" {
                start = value.index(after: probe)
                skipBlanks()
            }
        }
        var end = value.endIndex
        if start < value.endIndex, value[start] == "'" || value[start] == "\"" {
            let quote = value[start]
            start = value.index(after: start)
            end = value[start...].firstIndex(of: quote) ?? value.endIndex
        }
        guard let rewritten = rewrite(String(value[start..<end]), publicOrigin: publicOrigin) else { return nil }
        return String(value[..<start]) + rewritten + String(value[end...])
    }

    func matches(host: String, port: Int) -> Bool {
        guard port == self.port else { return false }
        return host == self.host || (Self.loopbackNames.contains(host) && Self.loopbackNames.contains(self.host))
    }

    static let specialSchemes: Set<String> = ["http", "https", "ws", "wss", "ftp"]
    static let loopbackNames: Set<String> = ["localhost", "127.0.0.1", "::1"]

    static func defaultPort(_ scheme: String?) -> Int {
        switch scheme {
        case "http", "ws": return 80
        case "ftp": return 21
        default: return 443  // https, wss, and scheme-relative URLs on the proxy's https origin
        }
    }

    static func hostAndPort(_ authority: Substring, defaultPort: Int) -> (String, Int)? {
        var host = authority
        var portText: Substring = ""
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { return nil }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        let port: Int
        if portText.isEmpty {
            port = defaultPort
        } else {
            guard portText.count <= 5, let number = Int(portText) else { return nil }
            port = number
        }
        var name = host.lowercased()
        if name.hasSuffix("."), name.count > 1 { name.removeLast() }  // `localhost.` is `localhost`
        return (name, port)
    }
}

extension StringProtocol {
    func replacingBackslashes() -> String {
        String(map { $0 == "\\" ? "/" : $0 })
    }
}
