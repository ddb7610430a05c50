import ActAsHTTP
import NIOCore
import Testing

@Suite("Host policy")
struct HostPolicyTests {
    let open = HostPolicy(publicHosts: [])
    let served = HostPolicy(publicHosts: ["App.Example", "localhost", "intranet."], listenerPort: 8443)
    let portal = HostPolicy(publicHosts: ["app.example", "Portal.Example:443", "portal.example:9443", "[::1]:8080"], listenerPort: 8443)

    @Test(arguments: ["localhost", "localhost:8443", "app.example", "127.0.0.1", "127.0.0.1:1", "[::1]", "[::1]:443", "[fe80::1]",
                      "a-b_c~d.example", "x:65535"])
    func wellFormedHostsAreServedAsWritten(host: String) {
        #expect(open.decide(host) == .serveAsWritten)
    }

    @Test(arguments: ["", "a,b", "a;b", "a(b)", "a!b", "a'b", "a*b", "a+b", "a=b", "a$b", "a&b", "a%0d", "a%2e", "a b", "a@b",
                      "a/b", "a\\b", "[::1", "[]", "[::g]", "[::1]x", "a:", "a:0", "a:65536", "a:99999", "a:123456", "a:8x", ":80",
                      "a..", ".", ".a", "a..b", "\u{e9}.example", String(repeating: "a", count: 256)])
    func malformedHostsAreInvalid(host: String) {
        #expect(open.decide(host) == .invalid, "\(host)")
        #expect(served.decide(host) == .invalid, "\(host)")
    }

    @Test func canonicalSpellingIsLowerCaseWithoutTheRootDot() {
        #expect(open.decide("Intranet.Example:8443") == .serve(Array("intranet.example:8443".utf8)))
        #expect(open.decide("example.com.") == .serve(Array("example.com".utf8)))
        #expect(open.decide("[FE80::1]") == .serve(Array("[fe80::1]".utf8)))
    }

    @Test func withPublicHostsTheClientCannotChooseThePort() {
        for host in ["app.example:31337", "app.example:443", "app.example:9443", "portal.example:8080", "[::1]:9443", "app.example:80",
                     "APP.example:08080", "app.example:65535"] {
            #expect(portal.decide(host) == .misdirected, "\(host)")
        }
        #expect(served.decide("localhost:31337") == .misdirected)
    }

    @Test func theListenerPortAnEntryPortOrNoPortIsServed() {
        #expect(portal.decide("app.example") == .serveAsWritten)
        #expect(portal.decide("app.example:8443") == .serveAsWritten)
        #expect(portal.decide("app.example:08443") == .serve(Array("app.example:8443".utf8)))
        #expect(portal.decide("portal.example") == .serveAsWritten)
        #expect(portal.decide("portal.example:443") == .serveAsWritten)
        #expect(portal.decide("PORTAL.example:9443") == .serve(Array("portal.example:9443".utf8)))
        #expect(portal.decide("portal.example:8443") == .serveAsWritten)
        #expect(portal.decide("[::1]:8080") == .serveAsWritten)
        #expect(portal.decide("[::1]") == .serveAsWritten)
    }

    @Test func entriesAreKeptInTheirCanonicalSpelling() {
        #expect(portal.publicHosts.map { String(decoding: $0, as: UTF8.self) } == ["app.example", "portal.example:443", "portal.example:9443", "[::1]:8080"])
        #expect(portal.entries.map(\.port) == [nil, 443, 9443, 8080])
        #expect(served.publicHosts.map { String(decoding: $0, as: UTF8.self) } == ["app.example", "localhost", "intranet"])
    }

    @Test func withoutPublicHostsAnyPortIsServed() {
        let any = HostPolicy(publicHosts: [], listenerPort: 8443)
        #expect(any.decide("app.example:31337") == .serveAsWritten)
        #expect(any.decide("app.example:443") == .serveAsWritten)
    }

    @Test func onlyPublicHostsAreServedWhateverTheCase() {
        #expect(served.decide("app.example") == .serveAsWritten)
        #expect(served.decide("APP.example:8443") == .serve(Array("app.example:8443".utf8)))
        #expect(served.decide("localhost.") == .serve(Array("localhost".utf8)))
        #expect(served.decide("intranet") == .serveAsWritten)
        for host in ["evil.example", "app.example.evil.example", "evil-app.example", "pp.example", "localhos", "127.0.0.1", "[::1]"] {
            #expect(served.decide(host) == .misdirected, "\(host)")
        }
    }
}

@Suite("Request sanitizer")
struct RequestSanitizerTests {
    @Test func routingHeadersInAnySpelling() {
        for name in ["X-Original-URL", "x-rewrite-url", "X_Original_URL", "X-ORIGINAL-URI", "X-Original-Path", "X-Original-Host", "X-Host",
                     "X-HTTP-Host-Override", "x-override-url"] {
            let bytes = Array(name.utf8)
            #expect(bytes.withUnsafeBytes { RequestSanitizer.isRoutingHeader($0, 0..<bytes.count) }, "\(name)")
        }
        for name in ["X-Original", "X-Hosts", "Host", "X-Request-Id", "Origin", "X-Original-URLs", "Y-Original-URL"] {
            let bytes = Array(name.utf8)
            #expect(!bytes.withUnsafeBytes { RequestSanitizer.isRoutingHeader($0, 0..<bytes.count) }, "\(name)")
        }
    }

    @Test func droppedTrailersAreNamedNeverValued() throws {
        var decoder = ChunkedDecoder(limits: HTTPLimits())
        var buffer = ByteBuffer(string: "0\r\nX-Forwarded-User: admin\r\nCookie: __Host-actas_session=secret\r\nx-forwarded-user: b\r\n\r\n")
        guard case .end(let trailers) = try decoder.next(&buffer) else {
            Issue.record("expected the end of the body")
            return
        }
        let detail = try #require(RequestSanitizer.droppedTrailersDetail(trailers))
        #expect(detail == "request trailers dropped: X-Forwarded-User, Cookie")
        #expect(!detail.contains("secret") && !detail.contains("admin"))
        #expect(RequestSanitizer.droppedTrailersDetail(nil) == nil)
    }

    @Test func sketchOfARefusedRequestLine() {
        func sketch(_ text: String) -> (String?, String?) { RequestSanitizer.sketchRequestLine(ByteBuffer(string: text)) }
        #expect(sketch("GET /a?b=1 HTTP/1.1\r\n") == ("GET", "/a?b=1"))
        #expect(sketch("GET /x\"\r\n{\"forged\":1} HTTP/1.1\r\n") == ("GET", "/x\"\r\n{\"forged\":1}"))
        #expect(sketch("GET /partial") == ("GET", "/partial"))
        #expect(sketch("GET") == ("GET", nil))
        #expect(sketch("\u{1}BAD / HTTP/1.1") == (nil, nil))
        #expect(sketch("") == (nil, nil))
        #expect(sketch(String(repeating: "A", count: 21) + " / HTTP/1.1") == (nil, nil))
        let long = RequestSanitizer.sketchRequestLine(ByteBuffer(string: "GET /" + String(repeating: "a", count: 10_000)))
        #expect(long.target?.utf8.count == 2048)
    }
}

@Suite("WebSocket origin")
struct WebSocketOriginTests {
    @Test func sameOriginOnly() {
        #expect(WebSocketOrigin.allowed(origin: "https://app.example", secFetchSite: nil, host: "app.example"))
        #expect(WebSocketOrigin.allowed(origin: "https://APP.example:443", secFetchSite: nil, host: "app.example"))
        #expect(WebSocketOrigin.allowed(origin: "https://app.example:8443", secFetchSite: nil, host: "app.example:8443"))
        #expect(WebSocketOrigin.allowed(origin: nil, secFetchSite: "same-origin", host: "app.example"))
        #expect(WebSocketOrigin.allowed(origin: "null", secFetchSite: "same-origin", host: "app.example"))
        #expect(WebSocketOrigin.allowed(origin: nil, secFetchSite: nil, host: "app.example"), "a program, not a page")
        for origin in ["https://evil.example", "http://app.example", "https://app.example.evil.example", "https://app.example:8443"] {
            #expect(!WebSocketOrigin.allowed(origin: origin, secFetchSite: "same-origin", host: "app.example"), "\(origin)")
        }
        #expect(!WebSocketOrigin.allowed(origin: nil, secFetchSite: "cross-site", host: "app.example"))
        #expect(!WebSocketOrigin.allowed(origin: "null", secFetchSite: nil, host: "app.example"))
        #expect(!WebSocketOrigin.allowed(origin: "null", secFetchSite: "same-site", host: "app.example"))
    }
}
