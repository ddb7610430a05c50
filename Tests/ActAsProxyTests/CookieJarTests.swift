import ActAsCore
import ActAsHTTP
import ActAsStore
import Foundation
import NIOCore
import Testing
@testable import ActAsProxy

/// SPEC §7: the application's cookies while impersonating, kept per session on the proxy.
// `CookieJarTests` itself (one test) is in ResponseRewritingTests.swift; these suites are
// nested in it so that `swift test --filter CookieJarTests` runs them all.
extension CookieJarTests {
    @Suite("CookieJar: what the application is sent")
    struct Application {
        /// Friday, 15 January 2027, 08:00:00 UTC.
        let now = Date(timeIntervalSince1970: 1_800_000_000)

        func cookies(_ jar: CookieJar, _ path: String = "/", at time: Date? = nil) -> [String] {
            jar.header(for: path, now: time ?? now)?.components(separatedBy: "; ") ?? []
        }

        @Test func theAppIsSentWhatItSetAndTheLastValueOfEach() {
            let jar = CookieJar()
            #expect(jar.header(for: "/", now: now) == nil)
            jar.store("a=1; Path=/", requestPath: "/", now: now)
            jar.store("b=2; Path=/; HttpOnly", requestPath: "/", now: now)
            jar.store("a=3; Path=/", requestPath: "/x", now: now)
            #expect(Set(cookies(jar)) == ["a=3", "b=2"] && cookies(jar).count == 2)
        }

        // MARK: lifetime

        @Test func maxAgeEndsACookieOnItsSecond() {
            let jar = CookieJar()
            jar.store("a=1; Max-Age=60", requestPath: "/", now: now)
            #expect(cookies(jar, at: now + 59) == ["a=1"])
            #expect(cookies(jar, at: now + 60) == [])
            #expect(cookies(jar, at: now) == [])  // gone for good, not hidden
        }

        @Test(arguments: ["Fri, 15 Jan 2027 08:00:30 GMT", "Friday, 15-Jan-27 08:00:30 GMT", "Fri, 15-Jan-2027 08:00:30 GMT", "Fri Jan 15 08:00:30 2027"])
        func expiresInEveryDateFormatEndsACookie(date: String) {
            let jar = CookieJar()
            #expect(jar.store("a=1; Expires=\(date)", requestPath: "/", now: now) == .stored(passToBrowser: true))
            #expect(cookies(jar, at: now + 29) == ["a=1"])
            #expect(cookies(jar, at: now + 30) == [])
        }

        @Test(arguments: ["a=; Max-Age=0", "a=x; Max-Age=-1", "a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                          "a=; expires=Thu, 01 Jan 1970 00:00:00 GMT; max-age=0", "a=1; Max-Age=10; Max-Age=0"])
        func aDeletionRemovesTheCookie(deletion: String) {
            let jar = CookieJar()
            jar.store("a=1", requestPath: "/", now: now)
            jar.store("keep=1", requestPath: "/", now: now)
            jar.store(deletion, requestPath: "/", now: now)
            #expect(cookies(jar) == ["keep=1"])
        }

        @Test func maxAgeWinsOverExpiresInEitherOrderAndNonsenseIsIgnored() {
            let jar = CookieJar()
            jar.store("a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60", requestPath: "/", now: now)
            jar.store("b=1; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT", requestPath: "/", now: now)
            jar.store("c=1; Max-Age=soon", requestPath: "/", now: now)
            jar.store("d=1; Expires=whenever", requestPath: "/", now: now)
            #expect(Set(cookies(jar, at: now + 59)) == ["a=1", "b=1", "c=1", "d=1"])
            #expect(Set(cookies(jar, at: now + 60)) == ["c=1", "d=1"])  // no lifetime given: the session's
        }

        // MARK: Path and Domain

        @Test(arguments: [("/", "/"), ("/a", "/"), ("/a/b", "/a"), ("/a/b/", "/a/b"), ("", "/"), ("a/b", "/"), ("/a/b/c.html", "/a/b")])
        func theDefaultPathIsTheRequestsDirectory(requestPath: String, expected: String) {
            #expect(CookieJar.defaultPath(requestPath) == expected)
        }

        @Test(arguments: [
            ("/docs", "/docs", true), ("/docs/", "/docs", true), ("/docs/x", "/docs", true), ("/docs/x", "/docs/", true),
            ("/docsx", "/docs", false), ("/doc", "/docs", false), ("/", "/docs", false), ("/DOCS/x", "/docs", false), ("/anything", "/", true),
        ])
        func pathsMatchOnSegmentBoundaries(requestPath: String, cookiePath: String, matches: Bool) {
            #expect(CookieJar.pathMatches(requestPath, cookiePath) == matches)
        }

        @Test func eachPathIsItsOwnCookieAndTheLongestComesFirst() {
            let jar = CookieJar()
            jar.store("id=root; Path=/", requestPath: "/", now: now)
            jar.store("id=app; Path=/app", requestPath: "/", now: now)
            jar.store("id=deep", requestPath: "/app/deep/page", now: now)  // default path /app/deep
            jar.store("x=1; Path=relative", requestPath: "/app/page", now: now)  // not a path: the default, /app
            #expect(cookies(jar, "/app/deep/page") == ["id=deep", "id=app", "x=1", "id=root"]
                    || cookies(jar, "/app/deep/page") == ["id=deep", "x=1", "id=app", "id=root"])
            #expect(Set(cookies(jar, "/app")) == ["id=app", "x=1", "id=root"])
            #expect(cookies(jar, "/application") == ["id=root"])
            jar.store("id=; Max-Age=0; Path=/app", requestPath: "/", now: now)  // deletes that path's only
            #expect(cookies(jar, "/app/deep/x") == ["id=deep", "x=1", "id=root"])
        }

        @Test func domainDoesNotMakeAnotherCookieInTheSingleHostJar() {
            // The jar serves one upstream: name and path identify a cookie; Domain only matters
            // for what the browser keeps (and is written back in the restoration).
            let jar = CookieJar()
            jar.store("a=1; Domain=app.example; Path=/", requestPath: "/", now: now)
            jar.store("a=2; Path=/", requestPath: "/", now: now)
            #expect(cookies(jar) == ["a=2"])
            #expect(jar.restoration(now: now).sorted() == ["a=; Path=/; Domain=app.example; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                                                          "a=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"])
        }

        // MARK: what is refused

        @Test(arguments: ["__Host-actas_session=x; Path=/; Secure", "__HOST-ACTAS_SESSION=x", "__host-actas_login=x", "__Host-actas_oidc=x",
                          "__Host-actas_future=x", "__Secure-actas_x=x", "actas_session=x", "ACTAS-token=x", "=__Host-actas_session=x",
                          " __Host-actas_session =x"])
        func theProxysNamesAreNeverKept(setCookie: String) {
            let jar = CookieJar()
            #expect(jar.store(setCookie, requestPath: "/", now: now) == .refusedProxyOwned)
            #expect(jar.header(for: "/", now: now) == nil && jar.browserSide.passed.isEmpty && jar.restoration(now: now).isEmpty)
        }

        @Test(arguments: ["", "=x", "novalue", "a b=1", "(a)=1", "a\"b=1", "a,b=1", "café=1", "a=1\u{1}", "a=1\u{0}b", "a=x\u{7f}",
                          "a=1\r\nX-Injected: 1", "a=1\nb=2"])
        func namesAndValuesACookieHeaderCannotCarryAreRefused(setCookie: String) {
            let jar = CookieJar()
            #expect(jar.store(setCookie, requestPath: "/", now: now) == .refusedInvalidName)
            #expect(jar.header(for: "/", now: now) == nil && jar.browserSide.passed.isEmpty)
        }

        @Test func oneOfTheProxysNamesIsNeverLearnedAsTheAdministratorsOwn() {
            let jar = CookieJar()
            jar.noteBrowserCookies([("__Host-actas_session", "S"), ("__host-ACTAS_login", "L"), ("", "bare"), ("theme", "dark")])
            #expect(jar.browserSide.own == ["theme": "dark"])
        }

        // MARK: size

        @Test func aSessionKeepsAtMostMaxCookiesDroppingTheOldest() {
            let jar = CookieJar()
            for i in 0...CookieJar.maxCookies { jar.store("c\(i)=\(i); HttpOnly", requestPath: "/", now: now) }
            var sent = Set(cookies(jar))
            #expect(sent.count == CookieJar.maxCookies && !sent.contains("c0=0") && sent.contains("c\(CookieJar.maxCookies)=\(CookieJar.maxCookies)"))
            jar.store("c1=new; HttpOnly", requestPath: "/", now: now)  // a replacement evicts nothing
            sent = Set(cookies(jar))
            #expect(sent.count == CookieJar.maxCookies && sent.contains("c1=new") && !sent.contains("c1=1") && sent.contains("c2=2"))
        }

        @Test func theBrowserIsGivenAtMostMaxCookies() {
            let jar = CookieJar()
            for i in 0..<CookieJar.maxCookies {
                #expect(jar.store("c\(i)=\(i)", requestPath: "/", now: now) == .stored(passToBrowser: true))
            }
            #expect(jar.store("extra=1", requestPath: "/", now: now) == .stored(passToBrowser: false))
            #expect(jar.store("c7=again", requestPath: "/", now: now) == .stored(passToBrowser: true))  // already there: updated
            #expect(jar.browserSide.passed.count == CookieJar.maxCookies && jar.restoration(now: now).count == CookieJar.maxCookies)
            jar.noteBrowserCookies((0..<(2 * CookieJar.maxCookies)).map { ("own\($0)", "v") })
            #expect(jar.browserSide.own.count == CookieJar.maxCookies)
        }

        @Test func concurrentResponsesOfOneSessionLoseNothingBelowTheLimit() async {
            let jar = CookieJar()
            let now = self.now
            await withTaskGroup(of: Void.self) { group in
                for task in 0..<8 {
                    group.addTask {
                        for i in 0..<20 { jar.store("t\(task)_\(i)=\(i)", requestPath: "/", now: now) }
                    }
                }
            }
            #expect(cookies(jar).count == 160)
        }
    }

    /// SPEC §7: one impersonation's cookies never reach the application in another's requests or
    /// in the administrator's own.
    @Suite("CookieJars: one jar per impersonation session")
    struct Isolation {
        let now = Date()

        /// Two administrators acting as the same target at once, each from their own sign-in, and
        /// administrator A's second sign-in browsing as themselves.
        func twoSessions() -> (LiveState, CookieJars, ImpersonationSession, ImpersonationSession) {
            let live = LiveState()
            for (hash, user) in [("a", "usr_a"), ("a2", "usr_a"), ("b", "usr_b")] {
                live.apply(sessionHash: hash, session: SignInSession(idHash: hash, userID: user, csrfToken: "c", createdAt: now,
                                                                     expiresAt: now + 3600, clientIP: ""))
            }
            let one = ImpersonationSession(id: "imp_1", actorID: "usr_a", targetID: "usr_t", reason: "ticket 1", mode: .readWrite,
                                           startedAt: now, expiresAt: now + 600, signInSession: "a")
            let two = ImpersonationSession(id: "imp_2", actorID: "usr_b", targetID: "usr_t", reason: "ticket 2", mode: .readWrite,
                                           startedAt: now, expiresAt: now + 600, signInSession: "b")
            live.apply(impersonationID: one.id, session: one)
            live.apply(impersonationID: two.id, session: two)
            return (live, CookieJars(), one, two)
        }

        @Test func eachSessionHasItsOwnJarEvenForTheSameTarget() {
            let (live, jars, one, two) = twoSessions()
            let jarOne = jars.jar(for: one, live: live)
            let jarTwo = jars.jar(for: two, live: live)
            #expect(jarOne === jars.jar(for: one, live: live) && jarOne !== jarTwo)
            jarOne.store("sessionid=ONE; HttpOnly; Path=/", requestPath: "/", now: now)
            jarOne.store("csrftoken=CSRF1; Path=/", requestPath: "/", now: now)
            jarTwo.store("sessionid=TWO; HttpOnly; Path=/", requestPath: "/", now: now)
            #expect(jarOne.header(for: "/", now: now).map { Set($0.components(separatedBy: "; ")) } == ["sessionid=ONE", "csrftoken=CSRF1"])
            #expect(jarTwo.header(for: "/", now: now) == "sessionid=TWO")
        }

        @Test func theAdministratorsOwnRequestsNeverCarryTheSessionsCookies() {
            let (live, jars, one, two) = twoSessions()
            let jarOne = jars.jar(for: one, live: live)
            let jarTwo = jars.jar(for: two, live: live)
            jarTwo.store("sessionid=TWO; HttpOnly; Path=/", requestPath: "/", now: now)
            jarOne.noteBrowserCookies([("sessionid", "ADMIN"), ("csrftoken", "MINE")])
            jarOne.store("sessionid=ONE; HttpOnly; Path=/", requestPath: "/", now: now)
            jarOne.store("csrftoken=CSRF1; Path=/", requestPath: "/", now: now)
            // While it runs, A's other sign-in browses as A: its browser's cookies are A's own.
            #expect(jars.administratorCookies(signIn: "a2", fields: [("Cookie", "sessionid=ADMIN")], live: live) == nil)
            #expect(jars.takeRestoration(signIn: "a2", live: live, now: now) == nil)
            _ = live.end(impersonationID: one.id, at: now, reason: .exit)
            // Back as A in the browser that acted: the app's script-readable value it still holds
            // is replaced by A's own; the HttpOnly one never was in the browser.
            let own = jars.administratorCookies(signIn: "a", fields: [("Cookie", "sessionid=ADMIN; csrftoken=CSRF1; theme=dark")], live: live)
            #expect(own == .some("sessionid=ADMIN; csrftoken=MINE; theme=dark"))
            #expect(jars.takeRestoration(signIn: "a", live: live, now: now) == "Set-Cookie: csrftoken=MINE; Path=/\r\n")
            // The other administrator's session is untouched.
            #expect(jars.jar(for: two, live: live) === jarTwo && jarTwo.header(for: "/", now: now) == "sessionid=TWO")
            #expect(jars.administratorCookies(signIn: "b", fields: [("Cookie", "csrftoken=CSRF1")], live: live) == nil)
        }

        @Test func aNewSessionOfTheSameAdministratorStartsEmpty() {
            let (live, jars, one, _) = twoSessions()
            let old = jars.jar(for: one, live: live)
            old.store("sessionid=ONE; HttpOnly", requestPath: "/", now: now)
            _ = live.end(impersonationID: one.id, at: now, reason: .expired)
            let again = ImpersonationSession(id: "imp_3", actorID: "usr_a", targetID: "usr_t", reason: "ticket 3", mode: .readWrite,
                                             startedAt: now, expiresAt: now + 600, signInSession: "a")
            live.apply(impersonationID: again.id, session: again)
            let fresh = jars.jar(for: again, live: live)
            #expect(fresh !== old && fresh.header(for: "/", now: now) == nil)
        }

        /// The whole round: the upstream's `Set-Cookie` through the response rewriter into one
        /// session's jar, then the next requests of each session through the request rewriter.
        @Test func aCookieSetInOneSessionReachesTheUpstreamInThatSessionOnly() throws {
            let (live, jars, one, two) = twoSessions()
            var facts = HeaderRewriter.ResponseFacts(
                requestID: testRequestID, framing: .none, contentLength: 0, close: false, http10KeepAlive: false, hstsLine: [],
                passContentLength: false, upgrade: false, cookieJar: jars.jar(for: one, live: live), cookiePath: "/")
            var out = ByteBuffer()
            HeaderRewriter.writeDownstreamResponse(
                try responseHead("HTTP/1.1 200 OK\r\nSet-Cookie: sessionid=ONE; HttpOnly; Path=/\r\nContent-Length: 0\r\n\r\n"), facts: facts, into: &out)
            #expect(!String(buffer: out).contains("ONE"))  // HttpOnly: it stays on the proxy
            facts.cookieJar = nil

            func upstreamCookies(_ session: ImpersonationSession) throws -> [String] {
                let request = try head("GET /x HTTP/1.1\r\nHost: app.example\r\nCookie: sessionid=ADMIN\r\n\r\n")
                var requestFacts = HeaderRewriter.RequestFacts(
                    requestID: testRequestID, clientAddress: Array("192.0.2.1".utf8), peerIsTrustedProxy: false, upgrade: false,
                    targetOverride: nil, hostOverride: nil)
                requestFacts.impersonationCookies = jars.jar(for: session, live: live).header(for: "/x", now: now) ?? ""
                var written = ByteBuffer()
                HeaderRewriter.writeUpstreamRequest(request, facts: requestFacts, settings: try settings(), into: &written)
                return WrittenHead(written).values("Cookie")
            }
            #expect(try upstreamCookies(one) == ["sessionid=ONE"])
            #expect(try upstreamCookies(two) == [])
        }
    }
}
