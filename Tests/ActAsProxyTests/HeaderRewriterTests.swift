import ActAsCore
import ActAsHTTP
import Foundation
import NIOCore
import Testing
@testable import ActAsProxy

/// The request head the upstream gets (SPEC §5 identity headers and anti-spoofing, §7 the
/// proxy's cookies, §9 Host and hop-by-hop), written from a client's head as the handler does:
/// sanitize, the credential scan, then `HeaderRewriter.writeUpstreamRequest`.
/// `swift test --filter HeaderRewriterTests` runs both suites below.
struct HeaderRewriterTests {}

extension HeaderRewriterTests {
    @Suite("HeaderRewriter: request to the upstream")
    struct Request {
        static let peer = "203.0.113.7"

        /// What the upstream reads, and where the written `X-Forwarded-Host` value lies.
        struct Forwarded {
            let head: WrittenHead
            let forwardedHost: String
        }

        func forward(
            _ text: String, config: String = "", trusted: Bool = false, impersonating: Bool = false,
            adjust: (inout HeaderRewriter.RequestFacts) -> Void = { _ in }
        ) throws -> Forwarded {
            let settings = try settings(config)
            let head = try head(text)
            let credentials = RequestCredentials.scan(head.block)
            guard case .proceed(let sanitized) = RequestPipeline.sanitize(head, impersonateHeader: credentials.impersonateHeader, settings: settings)
            else { throw ConfigTextError() }
            var facts = HeaderRewriter.RequestFacts(
                requestID: testRequestID, clientAddress: Array(Self.peer.utf8), peerIsTrustedProxy: trusted,
                upgrade: sanitized.isUpgrade, targetOverride: sanitized.targetOverride, hostOverride: sanitized.hostOverride)
            facts.identity = Self.identityLines(settings, impersonating: impersonating)
            facts.filterCookies = credentials.hasActAsCookies
            facts.dropActAsToken = credentials.hasActAsToken
            adjust(&facts)
            var out = ByteBuffer()
            let range = HeaderRewriter.writeUpstreamRequest(head, facts: facts, settings: settings, into: &out)
            let written = WrittenHead(out)
            #expect(written.isTerminatedOnce, "\(written.text)")
            // The upstream's parser (here the proxy's own, as strict as llhttp) reads it as one request.
            _ = try ActAsProxyTests.head(written.text)
            let host = out.getString(at: out.readerIndex + range.lowerBound, length: range.count) ?? ""
            return Forwarded(head: written, forwardedHost: host)
        }

        /// The identity lines the proxy made for a signed-in request (names as configured).
        static func identityLines(_ settings: ProxySettings, impersonating: Bool) -> [UInt8] {
            var lines: [UInt8] = []
            IdentityForwarding.appendLine(&lines, settings.userHeader, impersonating ? "target" : "alice")
            IdentityForwarding.appendLine(&lines, settings.emailHeader, impersonating ? "target@example.com" : "alice@example.com")
            IdentityForwarding.appendLine(&lines, settings.groupsHeader, "staff")
            if impersonating {
                IdentityForwarding.appendLine(&lines, IdentityForwarding.impersonatorUser, "alice")
                IdentityForwarding.appendLine(&lines, IdentityForwarding.impersonatorEmail, "alice@example.com")
                IdentityForwarding.appendLine(&lines, IdentityForwarding.impersonationID, "imp_1")
                IdentityForwarding.appendLine(&lines, IdentityForwarding.impersonationMode, "read-only")
                IdentityForwarding.appendLine(&lines, IdentityForwarding.impersonationExpires, "2026-12-07T20:00:00Z")
            }
            IdentityForwarding.appendLine(&lines, settings.assertionHeader, "eyJproxy.signed.jwt")
            return lines
        }

        /// The spellings a client can give one header name: as SPEC writes it, lower, upper,
        /// alternating case, `_` for `-`, and both at once.
        static func spellings(_ name: String) -> [String] {
            let alternating = String(name.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : Character($0.element.lowercased()) })
            let underscored = name.replacingOccurrences(of: "-", with: "_")
            return [name, name.lowercased(), name.uppercased(), alternating, underscored, underscored.lowercased(),
                    alternating.replacingOccurrences(of: "-", with: "_")]
        }

        /// SPEC §5's table, the other spellings of the same claims, and the `x-impersonat` family.
        static let ownedNames = [
            "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Impersonator-User", "X-Impersonator-Email",
            "X-Impersonation-Id", "X-Impersonation-Mode", "X-Impersonation-Expires", "X-ActAs-Jwt-Assertion",
            "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id",
            "Forwarded", "X-Real-IP", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Impersonated-By", "X-ActAs-Anything",
        ]

        @Test(arguments: ownedNames, [false, true])
        func everySpellingOfAnOwnedHeaderIsDroppedEvenDuplicated(name: String, impersonating: Bool) throws {
            let spoofed = Self.spellings(name).enumerated().map { "\($0.element): spoofed-\($0.offset)\r\n" }.joined()
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\n\(spoofed)\(spoofed)X-Kept: yes\r\n\r\n", impersonating: impersonating)
            #expect(!forwarded.head.text.contains("spoofed"), "\(forwarded.head.text)")
            #expect(forwarded.head.values("x-kept") == ["yes"])
            // What the proxy sets itself is there once, with its own value.
            let normalised = name.lowercased()
            let count = forwarded.head.normalisedNames.filter { $0 == normalised }.count
            let proxySets = ["x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-actas-jwt-assertion", "x-forwarded-for",
                             "x-forwarded-proto", "x-forwarded-host", "x-request-id"].contains(normalised)
                || (impersonating && normalised.hasPrefix("x-impersonat") && normalised != "x-impersonated-by")
            #expect(count == (proxySets ? 1 : 0), "\(forwarded.head.text)")
        }

        /// Spellings a lenient server would still read as an identity header, but that are no
        /// header name: the codec refuses them, so the rewriter never has to recognise them.
        @Test(arguments: ["X-Forwarded-User : root", "X-Forwarded-User\t: root", "X-Forwarded-User\u{0}: root", "X-Forwarded-Uſer: root",
                          "X-Forwarded-User\u{B}: root", "\"X-Forwarded-User\": root", "Accept: */*\r\n X-Forwarded-User: root",
                          "Accept: */*\r\n\tX-Forwarded-User: root", "X-Forwarded-User: ro\u{0}ot", "X-Forwarded-User: ro\rot"])
        func spellingsThatAreNoHeaderNameAreRefusedBeforeAnyRewrite(line: String) throws {
            #expect(throws: HTTPParseError.self) { _ = try head("GET / HTTP/1.1\r\nHost: app.example\r\n\(line)\r\n\r\n") }
        }

        /// SPEC §5: `Impersonate-*` is answered with 403 before anything is rewritten, in the
        /// spellings the rewriter would otherwise have to drop.
        @Test(arguments: ["Impersonate_User: alice", "IMPERSONATE_GROUP: admins", "impersonate-extra-scopes: all", "Impersonate-Uid_: 0"])
        func impersonateHeadersInAnySpellingAreRefusedNotForwarded(field: String) throws {
            let head = try head("GET / HTTP/1.1\r\nHost: app.example\r\n\(field)\r\n\r\n")
            let step = RequestPipeline.sanitize(head, impersonateHeader: RequestCredentials.scan(head.block).impersonateHeader, settings: try settings())
            guard case .answer(let answer) = step else {
                Issue.record("forwarded")
                return
            }
            #expect(answer == .impersonationHeader && answer.status == 403)
        }

        @Test func theProxysOwnLinesCarryItsValues() throws {
            let forwarded = try forward("GET /a?b=1 HTTP/1.1\r\nHost: app.example\r\n\r\n", impersonating: true)
            let head = forwarded.head
            #expect(head.startLine == "GET /a?b=1 HTTP/1.1")
            #expect(head.values("X-Forwarded-User") == ["target"] && head.values("X-Impersonator-User") == ["alice"])
            #expect(head.values("X-Impersonation-Id") == ["imp_1"] && head.values("X-Impersonation-Mode") == ["read-only"])
            #expect(head.values("X-Forwarded-For") == [Self.peer] && head.values("X-Forwarded-Proto") == ["https"])
            #expect(head.values("X-Forwarded-Host") == ["app.example"] && forwarded.forwardedHost == "app.example")
            #expect(head.values("X-Request-Id") == [testRequestID.string])
        }

        @Test func configuredIdentityNamesAreOwnedInEverySpellingToo() throws {
            let config = "[headers]\nuser = \"Remote-User\"\nemail = \"Remote-Email\"\ngroups = \"Remote-Groups\"\nassertion = \"Remote-Jwt\"\n"
            let spoofed = ["Remote-User", "Remote-Email", "Remote-Groups", "Remote-Jwt"].flatMap(Self.spellings)
                .enumerated().map { "\($0.element): spoofed-\($0.offset)\r\n" }.joined()
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\n\(spoofed)\r\n", config: config)
            #expect(!forwarded.head.text.contains("spoofed"), "\(forwarded.head.text)")
            #expect(forwarded.head.values("Remote-User") == ["alice"] && forwarded.head.values("Remote-Jwt") == ["eyJproxy.signed.jwt"])
            // The default names stay the proxy's (`x-forwarded-` is its whole family).
            #expect(try forward("GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-User: root\r\n\r\n", config: config)
                .head.values("X-Forwarded-User").isEmpty)
        }

        @Test func anAnonymousRequestCarriesNoIdentityAtAll() throws {
            let forwarded = try forward("GET /static/x.css HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-User: root\r\nX-Impersonator-User: a\r\n\r\n") {
                $0.identity = nil
            }
            #expect(!forwarded.head.normalisedNames.contains { $0 == "x-forwarded-user" || $0.hasPrefix("x-impersonat") || $0 == "x-actas-jwt-assertion" })
        }

        @Test(arguments: ["X-Original-URL: /admin", "x_rewrite_url: /admin", "X-ORIGINAL-HOST: evil.example", "X-Host: evil.example",
                          "X-HTTP-Host-Override: evil.example", "x-override-url: /admin", "X-Original-Path: /admin"])
        func routingOverridesNeverReachTheUpstream(field: String) throws {
            let forwarded = try forward("GET /public HTTP/1.1\r\nHost: app.example\r\n\(field)\r\n\r\n")
            #expect(!forwarded.head.text.contains("evil") && !forwarded.head.text.contains("/admin"), "\(forwarded.head.text)")
        }

        // MARK: X-Forwarded-For

        @Test func anUntrustedPeersForwardedForIsReplaced() throws {
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\n\r\n")
            #expect(forwarded.head.values("X-Forwarded-For") == [Self.peer])
        }

        @Test(arguments: ["X-Forwarded-For", "x-forwarded-for", "X-FORWARDED-FOR"])
        func aTrustedProxysForwardedForIsAppendedTo(name: String) throws {
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\n\(name): 198.51.100.1, 10.0.0.1\r\n\r\n", trusted: true)
            #expect(forwarded.head.values("X-Forwarded-For") == ["198.51.100.1, 10.0.0.1, \(Self.peer)"])
        }

        @Test func aTrustedProxyWithoutForwardedForGivesThePeerOnly() throws {
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\nX-Real-IP: 1.1.1.1\r\nForwarded: for=1.1.1.1\r\n\r\n", trusted: true)
            #expect(forwarded.head.values("X-Forwarded-For") == [Self.peer])
            #expect(forwarded.head.values("X-Real-IP").isEmpty && forwarded.head.values("Forwarded").isEmpty)
        }

        @Test func anUnderscoreSpellingIsNotTakenAsATrustedProxysList() throws {
            // Only the real name is the trusted proxy's list; `X_Forwarded_For` is a spoof of it.
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n", trusted: true)
            #expect(forwarded.head.values("X-Forwarded-For") == [Self.peer] && !forwarded.head.text.contains("6.6.6.6"))
        }

        /// RFC 9110 §5.3: several `X-Forwarded-For` fields are one comma-joined list. A trusted
        /// proxy that adds its own field after the client's puts the address it saw last: that is
        /// the entry the application trusts, and it must not be lost.
        @Test func aTrustedProxysSplitForwardedForKeepsEveryEntry() throws {
            let forwarded = try forward(
                "GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", trusted: true)
            #expect(forwarded.head.values("X-Forwarded-For") == ["6.6.6.6, 198.51.100.1, \(Self.peer)"])
        }

        @Test func aTrustedProxysEmptyForwardedForFieldAddsNoEmptyEntry() throws {
            let forwarded = try forward(
                "GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For:\r\nX-Forwarded-For:  \r\nX-Forwarded-For: 198.51.100.1\r\n\r\n", trusted: true)
            #expect(forwarded.head.values("X-Forwarded-For") == ["198.51.100.1, \(Self.peer)"])
        }

        // MARK: hop-by-hop

        @Test func hopByHopFieldsAndWhatConnectionNamesAreRemoved() throws {
            let forwarded = try forward("""
                GET / HTTP/1.1\r
                Host: app.example\r
                Connection: keep-alive, X-Secret\r
                connection: x-DEBUG\r
                Keep-Alive: timeout=5\r
                TE: trailers\r
                Proxy-Connection: keep-alive\r
                Proxy-Authorization: Basic cHJveHk6c2VjcmV0\r
                Upgrade: h2c\r
                Trailer: X-Checksum\r
                X-Secret: 1\r
                x-debug: 2\r
                X-Kept: 3\r
                \r

                """) { $0.identity = nil }
            #expect(forwarded.head.names == ["host", "x-kept", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"],
                    "\(forwarded.head.text)")
        }

        @Test(arguments: ["X-Forwarded-User", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id", "X-ActAs-Jwt-Assertion"])
        func connectionCannotRemoveWhatTheProxyInjects(name: String) throws {
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\nConnection: \(name), \(name.lowercased())\r\n\r\n")
            #expect(forwarded.head.values(name).count == 1)
        }

        @Test func aWebSocketHandshakeKeepsItsUpgradeAndNothingElseDoes() throws {
            let ws = try forward(
                "GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: abc==\r\n\r\n")
            #expect(ws.head.values("Connection") == ["Upgrade"] && ws.head.values("Upgrade") == ["websocket"])
            #expect(ws.head.values("Sec-WebSocket-Key") == ["abc=="])
            let h2c = try forward("GET / HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
            #expect(h2c.head.values("Connection").isEmpty && h2c.head.values("Upgrade").isEmpty && h2c.head.values("HTTP2-Settings").isEmpty)
        }

        @Test func bodyFramingIsWrittenOnce() throws {
            let sized = try forward("POST /f HTTP/1.1\r\nHost: app.example\r\nContent-Length: 5\r\n\r\n")
            #expect(sized.head.values("Content-Length") == ["5"] && sized.head.values("Transfer-Encoding").isEmpty)
            let chunked = try forward("POST /f HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n")
            #expect(chunked.head.values("Transfer-Encoding") == ["chunked"] && chunked.head.values("Trailer").isEmpty)
        }

        // MARK: Host

        @Test func theValidatedHostIsWhatTheUpstreamGets() throws {
            let config = "[listen]\npublic_hosts = [\"app.example\"]\n"
            let canonical = try forward("GET / HTTP/1.1\r\nHost: APP.Example.\r\nX-Forwarded-Host: evil.example\r\n\r\n", config: config)
            #expect(canonical.head.values("Host") == ["app.example"] && canonical.head.values("X-Forwarded-Host") == ["app.example"])
            #expect(canonical.forwardedHost == "app.example")
            let absolute = try forward("GET https://app.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n", config: config)
            #expect(absolute.head.startLine == "GET /x HTTP/1.1")
            #expect(absolute.head.values("Host") == ["app.example"] && absolute.forwardedHost == "app.example")
            #expect(!absolute.head.text.contains("evil"))
            let old = try forward("GET / HTTP/1.0\r\n\r\n", config: config)
            #expect(old.head.values("Host") == ["app.example"] && old.head.values("X-Forwarded-Host") == ["app.example"])
            let asWritten = try forward("GET / HTTP/1.1\r\nHost: app.example:443\r\n\r\n")
            #expect(asWritten.head.values("Host") == ["app.example:443"] && asWritten.forwardedHost == "app.example:443")
        }

        // MARK: the proxy's cookies and tokens

        @Test(arguments: [
            ("Cookie: __Host-actas_session=SECRET; theme=dark", ["theme=dark"]),
            ("Cookie: theme=dark; __Host-actas_session=SECRET", ["theme=dark"]),
            ("Cookie: __host-actas_session=SECRET; a=1", ["a=1"]),
            ("COOKIE: __HOST-ACTAS_SESSION=SECRET; a=1", ["a=1"]),
            ("Cookie:   __Host-actas_session=SECRET ;\t theme=dark ;  ; x=1", ["theme=dark; x=1"]),
            ("Cookie: a=1\r\nCookie: __Host-actas_session=SECRET\r\ncookie: b=2; __Host-actas_login=SECRET", ["a=1", "b=2"]),
            ("Cookie: __Host-actas_session=SECRET; __Host-actas_session=SECRET2", []),
            ("Cookie: __Host-actas_oidc=SECRET\r\nCookie: __Host-actas_login=SECRET", []),
            ("Cookie: __Host-actas_session =SECRET; a=1", ["a=1"]),
        ])
        func theProxysCookiesNeverReachTheUpstream(fields: String, expected: [String]) throws {
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\n\(fields)\r\n\r\n")
            #expect(!forwarded.head.text.contains("SECRET") && !forwarded.head.text.lowercased().contains("actas_"), "\(forwarded.head.text)")
            #expect(forwarded.head.values("Cookie") == expected)
        }

        @Test func theAppsCookiesAloneAreForwardedByteForByte() throws {
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\nCookie: a=1;b=2;  c\r\ncookie: d=\"x y\"\r\n\r\n")
            #expect(forwarded.head.fields.filter { $0.name.lowercased() == "cookie" }.map { "\($0.name): \($0.value)" }
                == ["Cookie: a=1;b=2;  c", "cookie: d=\"x y\""])
        }

        @Test func whileImpersonatingTheJarReplacesEveryBrowserCookie() throws {
            let browser = "Cookie: sessionid=ADMIN; __Host-actas_session=SECRET\r\ncookie: csrftoken=ADMIN\r\n"
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\n\(browser)\r\n", impersonating: true) {
                $0.impersonationCookies = "sessionid=TARGET; csrftoken=APP"
            }
            #expect(forwarded.head.values("Cookie") == ["sessionid=TARGET; csrftoken=APP"])
            #expect(!forwarded.head.text.contains("ADMIN") && !forwarded.head.text.contains("SECRET"))
            let empty = try forward("GET / HTTP/1.1\r\nHost: app.example\r\n\(browser)\r\n", impersonating: true) { $0.impersonationCookies = "" }
            #expect(empty.head.values("Cookie").isEmpty)
        }

        @Test(arguments: ["Authorization: Bearer actas_0123456789abcdef", "authorization: bearer    actas_0123456789abcdef",
                          "AUTHORIZATION: BEARER actas_0123456789abcdef"])
        func apiTokensAreNeverForwarded(field: String) throws {
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\n\(field)\r\nAuthorization: Basic YXBwOmtleQ==\r\n\r\n")
            #expect(!forwarded.head.text.contains("actas_0123"))
            #expect(forwarded.head.values("Authorization") == ["Basic YXBwOmtleQ=="])  // SPEC §5: the app's own pass untouched
        }

        @Test func theAppsOwnBearerTokensPass() throws {
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\nAuthorization: Bearer eyJhbGciOi.app.token\r\n\r\n")
            #expect(forwarded.head.values("Authorization") == ["Bearer eyJhbGciOi.app.token"])
        }

        @Test(arguments: [("gzip, deflate, br", ["gzip"]), ("br, zstd", []), ("GZIP;q=1.0", ["gzip"])])
        func whileImpersonatingOnlyEncodingsTheBannerCanDecodeAreAskedFor(sent: String, expected: [String]) throws {
            let forwarded = try forward("GET / HTTP/1.1\r\nHost: app.example\r\nAccept-Encoding: \(sent)\r\n\r\n") { $0.narrowAcceptEncoding = true }
            #expect(forwarded.head.values("Accept-Encoding") == expected)
            #expect(try forward("GET / HTTP/1.1\r\nHost: app.example\r\nAccept-Encoding: \(sent)\r\n\r\n").head.values("Accept-Encoding") == [sent])
        }
    }

    /// The response head the browser gets (SPEC §7 the proxy's cookies and the jar, §9 hop-by-hop,
    /// `Location`).
    @Suite("HeaderRewriter: response to the client")
    struct Response {
        let now = Date()

        func facts(framing: HeaderRewriter.DownstreamFraming = .contentLength, length: Int64 = 2) -> HeaderRewriter.ResponseFacts {
            HeaderRewriter.ResponseFacts(
                requestID: testRequestID, framing: framing, contentLength: length, close: false, http10KeepAlive: false,
                hstsLine: Array("Strict-Transport-Security: max-age=63072000\r\n".utf8), passContentLength: false, upgrade: false)
        }

        func write(_ text: String, _ facts: HeaderRewriter.ResponseFacts) throws -> (WrittenHead, HeaderRewriter.ResponseNotes) {
            var out = ByteBuffer()
            let notes = HeaderRewriter.writeDownstreamResponse(try responseHead(text), facts: facts, into: &out)
            let written = WrittenHead(out)
            #expect(written.isTerminatedOnce, "\(written.text)")
            return (written, notes)
        }

        @Test(arguments: ["__Host-actas_session=stolen; Path=/; Secure; HttpOnly", "__HOST-ACTAS_SESSION=stolen", "__host-actas_login=stolen",
                          "actas_session=stolen", "ACTAS-x=stolen", "__Secure-actas_x=stolen; Secure", "=__Host-actas_session=stolen",
                          "  __Host-actas_session  =stolen"])
        func theProxysCookieNamesAreNeverAcceptedFromTheUpstream(setCookie: String) throws {
            let jar = CookieJar()
            for cookieJar in [nil, jar] {
                var facts = facts()
                facts.cookieJar = cookieJar
                let (head, notes) = try write("HTTP/1.1 200 OK\r\nSet-Cookie: \(setCookie)\r\nSet-Cookie: app=1\r\nContent-Length: 2\r\n\r\n", facts)
                #expect(!head.text.contains("stolen"))
                #expect(notes.refusedCookies.count == 1)
            }
            #expect(jar.header(for: "/", now: now) == "app=1")
        }

        @Test func hopByHopFieldsAndWhatConnectionNamesAreRemoved() throws {
            let (head, _) = try write("""
                HTTP/1.1 200 OK\r
                Connection: keep-alive, X-Internal\r
                Keep-Alive: timeout=5\r
                Proxy-Authenticate: Basic\r
                Upgrade: h2c\r
                X-Internal: secret\r
                X-Request-Id: upstream-id\r
                Transfer-Encoding: chunked\r
                Set-Cookie: a=1\r
                Set-Cookie: b=2\r
                \r

                """, facts(framing: .contentLength, length: 7))
            #expect(head.startLine == "HTTP/1.1 200 OK")
            #expect(head.names == ["set-cookie", "set-cookie", "content-length", "x-request-id", "strict-transport-security"], "\(head.text)")
            #expect(head.values("Set-Cookie") == ["a=1", "b=2"] && head.values("Content-Length") == ["7"])
            #expect(head.values("X-Request-Id") == [testRequestID.string])
        }

        @Test func framingIsTheProxysOwn() throws {
            let (chunked, _) = try write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", facts(framing: .chunked))
            #expect(chunked.values("Transfer-Encoding") == ["chunked"] && chunked.values("Content-Length").isEmpty)
            var head = facts(framing: .none)
            head.passContentLength = true
            var out = ByteBuffer()
            HeaderRewriter.writeDownstreamResponse(try responseHead("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method: .head), facts: head, into: &out)
            #expect(WrittenHead(out).values("Content-Length") == ["10"])
            var closing = facts(framing: .close)
            closing.close = true
            #expect(try write("HTTP/1.1 200 OK\r\n\r\n", closing).0.values("Connection") == ["close"])
        }

        @Test func strictTransportSecurityIsSentOnce() throws {
            #expect(try write("HTTP/1.1 200 OK\r\n\r\n", facts()).0.values("Strict-Transport-Security") == ["max-age=63072000"])
            #expect(try write("HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=1\r\n\r\n", facts()).0
                .values("Strict-Transport-Security") == ["max-age=1"])
        }

        @Test func whileImpersonatingCookiesGoToTheJarAndOnlyScriptReadableOnesToTheBrowser() throws {
            let jar = CookieJar()
            var facts = facts()
            facts.cookieJar = jar
            facts.cookiePath = "/app/page"
            facts.nosniff = true
            let (head, _) = try write("""
                HTTP/1.1 200 OK\r
                Set-Cookie: sessionid=TARGET; HttpOnly; Path=/\r
                Set-Cookie: csrftoken=APP; Path=/\r
                Set-Cookie: adminonly=; Max-Age=0; Path=/\r
                Set-Cookie: scoped=1\r
                X-Content-Type-Options: none\r
                \r

                """, facts)
            #expect(head.values("Set-Cookie") == ["csrftoken=APP; Path=/", "scoped=1"])
            #expect(head.values("X-Content-Type-Options") == ["nosniff"])
            // Longest path first (RFC 6265 §5.4); the default path of `/app/page` is `/app`.
            let sent = try #require(jar.header(for: "/app/page", now: now)).components(separatedBy: "; ")
            #expect(sent.first == "scoped=1" && Set(sent.dropFirst()) == ["sessionid=TARGET", "csrftoken=APP"])
            let elsewhere = try #require(jar.header(for: "/other", now: now)).components(separatedBy: "; ")
            #expect(Set(elsewhere) == ["sessionid=TARGET", "csrftoken=APP"] && elsewhere.count == 2)
        }

        @Test func aRewrittenPageDropsWhatNoLongerDescribesIt() throws {
            var facts = facts(framing: .chunked)
            facts.rewritten = true
            let (head, _) = try write("""
                HTTP/1.1 200 OK\r
                Content-Type: text/html\r
                Content-Encoding: gzip\r
                ETag: "v1"\r
                Accept-Ranges: bytes\r
                Cache-Control: public, max-age=600\r
                Content-MD5: x\r
                Digest: sha-256=x\r
                Content-Digest: sha-256=:x:\r
                Repr-Digest: sha-256=:x:\r
                Content-Length: 20\r
                \r

                """, facts)
            #expect(head.names == ["content-type", "transfer-encoding", "x-request-id", "cache-control", "strict-transport-security"], "\(head.text)")
            #expect(head.values("Cache-Control") == ["no-store"])
        }

        @Test func locationsAtTheUpstreamPointAtThePublicOrigin() throws {
            var facts = facts()
            facts.upstreamAddress = UpstreamAddress(host: "127.0.0.1", port: 8080)
            facts.publicHost = ByteBuffer(string: "app.example")
            let (head, _) = try write("""
                HTTP/1.1 302 Found\r
                Location: http://127.0.0.1:8080/next?a=1\r
                Content-Location: //127.0.0.1:8080/doc\r
                Refresh: 0; url=http://127.0.0.1:8080/r\r
                Link: <https://cdn.example/x>; rel=preload\r
                \r

                """, facts)
            #expect(head.values("Location") == ["https://app.example/next?a=1"])
            #expect(head.values("Content-Location") == ["https://app.example/doc"])
            #expect(head.values("Refresh") == ["0; url=https://app.example/r"])
            #expect(try write("HTTP/1.1 302 Found\r\nLocation: https://elsewhere.example/\r\n\r\n", facts).0.values("Location")
                == ["https://elsewhere.example/"])
        }

        @Test func restoredCookiesComeBeforeTheUpstreams() throws {
            var facts = facts()
            facts.restoredCookies = "Set-Cookie: csrftoken=MINE; Path=/\r\n"
            let (head, _) = try write("HTTP/1.1 200 OK\r\nSet-Cookie: other=1\r\n\r\n", facts)
            #expect(head.values("Set-Cookie") == ["csrftoken=MINE; Path=/", "other=1"])
        }

        @Test func aSwitchingResponseKeepsItsUpgrade() throws {
            var facts = facts(framing: .none)
            facts.upgrade = true
            let (head, _) = try write("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x=\r\n\r\n", facts)
            #expect(head.values("Connection") == ["Upgrade"] && head.values("Upgrade") == ["websocket"])
        }

        @Test func interimResponsesAndTrailersCarryNoCookiesAndNoHopByHop() throws {
            var out = ByteBuffer()
            HeaderRewriter.writeInterimResponse(try responseHead(
                "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nSet-Cookie: __Host-actas_session=stolen\r\nSet-Cookie: app=1\r\nConnection: keep-alive\r\n\r\n"),
                into: &out)
            let interim = WrittenHead(out)
            #expect(interim.startLine == "HTTP/1.1 103 Early Hints" && interim.names == ["link"])
            out.clear()
            let trailers = try responseHead("HTTP/1.1 200 OK\r\nX-Checksum: abc\r\nSet-Cookie: app=1\r\nTransfer-Encoding: chunked\r\n\r\n").block
            HeaderRewriter.writeTrailers(trailers, into: &out)
            #expect(String(buffer: out) == "0\r\nX-Checksum: abc\r\n\r\n")
        }
    }
}
