@testable import ActAsHTTP
import ActAsTestSupport
import Testing

struct SetCookieNameTests {
    func name(_ value: String) -> String { String(decoding: SetCookieName.name(Array(value.utf8)), as: UTF8.self) }

    @Test func readsTheNameAsABrowserDoes() {
        #expect(name("sid=1; Path=/") == "sid")
        #expect(name(" \t__Host-actas_session =x; Secure") == "__Host-actas_session")
        #expect(name("__Host-actas_session") == "__Host-actas_session")  // nameless: the value is what is sent back
        #expect(name("=v") == "")
        #expect(name("a=b=c") == "a")
        #expect(name("flag; Path=/=x") == "flag")
    }

    @Test(arguments: [
        "__Host-actas_session=x", "__host-ACTAS_Session=x", "__HOST-actas_login=y", "__Host-actas_oidc=z", "__Secure-actas_session=1",
        "__secure-ActAs_whatever=1", "actas_session=1", "ACTAS-thing=1", " \t__Host-actas_session =x", "__Host-actas_session",
        "__Host-actasX=1", "=__Host-actas_session=X", " = __Host-actas_session=X; Path=/", "=actas_session",
    ])
    func proxyOwned(_ value: String) {
        #expect(SetCookieName.isProxyOwned(Array(value.utf8)))
    }

    @Test(arguments: ["sid=1", "csrftoken=a", "my_actas_session=1", "__Host-session=1", "x=__Host-actas_session", "=sid=actas_session",
                      "actas=1", "__Host-=1", "session; actas_x=1"])
    func notProxyOwned(_ value: String) {
        #expect(!SetCookieName.isProxyOwned(Array(value.utf8)))
    }

    @Test func tokens() {
        for good in ["sid", "XSRF-TOKEN", "a.b_c~!#$%&'*+^`|"] { #expect(SetCookieName.isToken(Array(good.utf8)), "\(good)") }
        for bad in ["", "a b", "a\"b", "a(b)", "a/b", "a=b", "é", "a\u{7F}", "a\tb", "[x]", "a,b", "a:b", "a@b", "a{b}"] {
            #expect(!SetCookieName.isToken(Array(bad.utf8)), "\(bad)")
        }
    }
}

struct DocumentVerdictTests {
    func decide(_ types: [String], encodings: [String] = [], dispositions: [String] = [], status: Int = 200, isHead: Bool = false,
                emptyBody: Bool = false, navigation: Bool = true) -> DocumentVerdict {
        DocumentVerdict.decide(status: status, isHead: isHead, emptyBody: emptyBody, contentTypes: types, contentEncodings: encodings,
                               contentDispositions: dispositions, navigation: navigation)
    }

    func refused(_ verdict: DocumentVerdict) -> Bool {
        if case .refuse = verdict { return true }
        return false
    }

    @Test func oneSimpleTypeIsDecidedAsTheFullParseDecides() {
        #expect(decide(["text/plain"]) == .pass)
        #expect(decide([" Application/JSON ; charset=utf-16"]) == .pass)
        #expect(refused(decide([" IMAGE/SVG+XML "])))
        #expect(refused(decide(["application/atom+XML; charset=x"])))
        #expect(refused(decide(["text/XSL"])))
        #expect(decide(["TEXT/HTML\t"]) == .rewrite(.identity))
        #expect(refused(decide(["text/plain, text/html"])))  // a list: conflicting, never the shortcut
        #expect(decide([";charset=utf-8"]) == .pass)
        #expect(DocumentVerdict.plainASCIIEssence(" Text/Plain ; q") == "text/plain")
        #expect(DocumentVerdict.plainASCIIEssence("text/plain, x") == nil)
        #expect(DocumentVerdict.plainASCIIEssence("text/pl\u{212A}ain") == nil)
        #expect(DocumentVerdict.plainASCIIEssence("text/plain;\u{301}+xml") == nil)  // non-ASCII anywhere: the full parse
    }

    /// HTTP splits on bytes: `;` or `,` followed by a combining mark still separates (a split by
    /// Character kept them together, and `text/html;\u{301}` passed without the banner).
    @Test func separatorsAreBytesEvenBeforeACombiningMark() {
        #expect(decide(["text/html;\u{301}"]) == .rewrite(.identity))
        #expect(decide(["TEXT/HTML ;\u{301}charset=utf-8"]) == .rewrite(.identity))
        #expect(refused(decide(["text/plain,\u{301}text/html"])))
        #expect(decide(["text/plain;\u{301}+xml"]) == .pass)
        #expect(decide(["text/html"], dispositions: ["attachment;\u{301}"]) == .pass)
        #expect(refused(decide(["text/html"], encodings: ["gzip,\u{301}br"])))
    }

    /// The shortcut for one plain type decides as the full parse does, on random fields.
    @Test func theShortcutAgreesWithTheFullParse() {
        let pieces = ["text/plain", "text/html", "TEXT/HTML", "application/json", "image/svg+xml", "application/atom+xml", "text/xsl",
                      ";", ",", " ", "\t", "charset=utf-8", "charset=utf-16", "\u{301}", "+xml", "x", "=", "\"", "k", "\u{212A}"]
        var random = SplitMix64(seed: 20261207)
        for _ in 0..<20_000 {
            let field = (0..<Int(random.next() % 6)).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }.joined()
            for navigation in [true, false] {
                let full = DocumentVerdict.decide(status: 200, isHead: false, emptyBody: false, contentTypes: [field], contentEncodings: [],
                                                  contentDispositions: [], navigation: navigation, shortcut: false)
                let quick = DocumentVerdict.decide(status: 200, isHead: false, emptyBody: false, contentTypes: [field], contentEncodings: [],
                                                   contentDispositions: [], navigation: navigation)
                #expect(quick == full, "\(field.debugDescription) navigation=\(navigation)")
                if quick != full { return }
            }
        }
    }

    @Test func htmlAndXHTMLAreRewritten() {
        #expect(decide(["text/html"]) == .rewrite(.identity))
        #expect(decide(["Text/HTML ; Charset=UTF-8"]) == .rewrite(.identity))
        #expect(decide(["application/xhtml+xml"]) == .rewrite(.identity))
        #expect(decide(["text/html", "text/html"]) == .rewrite(.identity))  // a repeated field that agrees
    }

    @Test func encodings() {
        #expect(decide(["text/html"], encodings: ["gzip"]) == .rewrite(.gzip))
        #expect(decide(["text/html"], encodings: [" X-GZIP "]) == .rewrite(.gzip))
        #expect(decide(["text/html"], encodings: ["deflate"]) == .rewrite(.deflate))
        #expect(decide(["text/html"], encodings: ["identity"]) == .rewrite(.identity))
        #expect(decide(["text/html"], encodings: ["identity, gzip"]) == .rewrite(.gzip))
        for stacked in [["br"], ["gzip, gzip"], ["gzip", "gzip"], ["gzip", "br"], ["zstd"], ["compress"], ["deflate, gzip"]] {
            #expect(refused(decide(["text/html"], encodings: stacked)), "\(stacked)")
            #expect(decide(["text/html"], encodings: stacked, navigation: false) == .pass, "\(stacked)")
        }
    }

    @Test func xmlDocumentsAreRefusedOnNavigation() {
        for type in ["text/xml", "application/xml", "image/svg+xml", "application/rss+xml", "text/xsl", "IMAGE/SVG+XML; charset=utf-8"] {
            #expect(refused(decide([type])), "\(type)")
            #expect(decide([type], navigation: false) == .pass, "\(type)")
        }
    }

    @Test func conflictingTypesAreRefused() {
        #expect(refused(decide(["text/plain", "text/html"])))
        #expect(refused(decide(["text/plain, text/html"])))
        #expect(refused(decide(["text/html; charset=utf-8", "text/html; charset=utf-16"])))
        #expect(decide(["text/plain", "text/html"], navigation: false) == .pass)
        // The same type repeated, with or without its charset, is one type.
        #expect(decide(["text/html", "text/html; charset=utf-8"]) == .rewrite(.identity))
        #expect(decide(["text/html, TEXT/HTML"]) == .rewrite(.identity))
        #expect(refused(decide(["text/html", "text/html; charset=utf-16"])))
    }

    @Test func aPartialAnswerToANavigationIsRefused() {
        #expect(refused(decide(["text/html"], status: 206)))
    }

    @Test func utf16IsRefused() {
        for type in ["text/html; charset=utf-16", "text/html;charset=\"UTF-16LE\"", "text/html; charset=utf-16be", "text/html; charset=ucs-2",
                     "text/html; charset=unicodeFFFE", "application/xhtml+xml; charset=csUnicode"] {
            #expect(refused(decide([type])), "\(type)")
        }
        #expect(decide(["text/html; charset=utf-8"]) == .rewrite(.identity))
        #expect(decide(["text/html; charset=windows-1252"]) == .rewrite(.identity))
    }

    @Test func whatPasses() {
        #expect(decide([]) == .pass)  // no type: nosniff keeps the browser from sniffing HTML
        #expect(decide(["", " "]) == .pass)
        #expect(decide(["text/plain"]) == .pass)
        #expect(decide(["application/json"]) == .pass)
        #expect(decide(["text/html"], dispositions: ["attachment; filename=a.html"]) == .pass)
        #expect(decide(["text/html"], dispositions: ["ATTACHMENT"]) == .pass)
        #expect(decide(["text/html"], encodings: ["br"], dispositions: ["attachment"]) == .pass)
        #expect(decide(["text/html"], dispositions: ["inline"]) == .rewrite(.identity))
        #expect(decide(["text/html"], status: 204) == .pass)
        #expect(decide(["text/html"], status: 304) == .pass)
        #expect(decide(["text/html"], status: 206, navigation: false) == .pass)
        #expect(decide(["text/html"], status: 101) == .pass)
        #expect(decide(["text/html"], isHead: true) == .pass)
        #expect(decide(["text/html"], emptyBody: true) == .pass)
        #expect(decide(["text/html"], status: 404) == .rewrite(.identity))
    }
}

struct UpstreamAddressTests {
    let upstream = UpstreamAddress(host: "127.0.0.1", port: 9000)
    let origin = "https://app.example"

    @Test(arguments: [
        ("http://127.0.0.1:9000/next?a=1", "https://app.example/next?a=1"),
        ("http://127.0.0.1:9000", "https://app.example/"),
        ("http://127.0.0.1:9000?q", "https://app.example/?q"),
        ("http://127.0.0.1:9000#f", "https://app.example/#f"),
        ("HTTPS://127.0.0.1:9000/x", "https://app.example/x"),
        ("ws://127.0.0.1:9000/s", "https://app.example/s"),
        ("//127.0.0.1:9000/x", "https://app.example/x"),
        ("\\\\127.0.0.1:9000\\x\\y?a\\b", "https://app.example/x/y?a\\b"),
        ("http:\\\\127.0.0.1:9000\\x", "https://app.example/x"),
        ("http:127.0.0.1:9000/x", "https://app.example/x"),
        ("http:///127.0.0.1:9000/x", "https://app.example/x"),
        ("http://user:pw@127.0.0.1:9000/x", "https://app.example/x"),
        ("http://localhost:9000/x", "https://app.example/x"),
        ("http://LOCALHOST.:9000/x", "https://app.example/x"),
        ("http://[::1]:9000/x", "https://app.example/x"),
        ("  http://127.0.0.1:9000/x ", "https://app.example/x"),
    ])
    func rewritten(_ pair: (String, String)) {
        #expect(upstream.rewrite(pair.0, publicOrigin: origin) == pair.1)
    }

    @Test(arguments: ["/x", "x", "?a", "https://app.example/x", "http://127.0.0.1:9001/x", "http://127.0.0.1/x", "http://127.0.0.2:9000/x",
                      "https:127.0.0.1:9000/x", "mailto:a@127.0.0.1:9000", "http://127.0.0.1:9000@evil.example/x", "", "http://[::1/x",
                      "http://127.0.0.1:99999999999/x"])
    func untouched(_ url: String) {
        #expect(upstream.rewrite(url, publicOrigin: origin) == nil)
    }

    @Test func defaultPorts() {
        let onEighty = UpstreamAddress(host: "App.Internal", port: 80)
        #expect(onEighty.rewrite("http://app.internal/x", publicOrigin: origin) == "https://app.example/x")
        #expect(onEighty.rewrite("https://app.internal/x", publicOrigin: origin) == nil)  // 443
        #expect(onEighty.rewrite("http://localhost/x", publicOrigin: origin) == nil)  // not loopback-named upstream
    }

    @Test func refresh() {
        #expect(upstream.rewriteRefresh("0; url=http://127.0.0.1:9000/x", publicOrigin: origin) == "0; url=https://app.example/x")
        #expect(upstream.rewriteRefresh("5;URL='http://127.0.0.1:9000/x'", publicOrigin: origin) == "5;URL='https://app.example/x'")
        #expect(upstream.rewriteRefresh("5, http://127.0.0.1:9000/x", publicOrigin: origin) == "5, https://app.example/x")
        #expect(upstream.rewriteRefresh("3; url = \"//127.0.0.1:9000/\"", publicOrigin: origin) == "3; url = \"https://app.example/\"")
        #expect(upstream.rewriteRefresh("5", publicOrigin: origin) == nil)
        #expect(upstream.rewriteRefresh("5; url=/x", publicOrigin: origin) == nil)
        #expect(upstream.rewriteRefresh("5;", publicOrigin: origin) == nil)
        #expect(upstream.rewriteRefresh("5; ur", publicOrigin: origin) == nil)
    }
}

