import ActAsCore
import ActAsStore
import Foundation
import Testing

@testable import ActAsProxy

/// SPEC §7: the application's script-readable cookies while impersonating, without a socket.
struct CookiePassThroughTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func parsed(_ text: String, path: String = "/") throws -> SetCookieLine {
        try SetCookieLine.parse(text, requestPath: path, now: now).get()
    }

    @Test func parsesWhatTheBrowserKeys() throws {
        let line = try parsed("csrftoken=abc; Max-Age=60; Path=/app; Domain=example.com; Secure; SameSite=Lax; Partitioned")
        #expect(line.name == "csrftoken" && line.value == "abc" && line.path == "/app" && line.pathWritten)
        #expect(line.domain == "example.com" && line.expires == now + 60 && line.secure && line.sameSite == "Lax" && line.partitioned)
        #expect(!line.httpOnly)
        #expect(try parsed("s=1; httponly", path: "/a/b").httpOnly)
        #expect(try parsed("s=1", path: "/a/b").path == "/a")
        #expect(try parsed("s=1; Max-Age=-5").isDeletion(now: now))
        #expect(try parsed("s=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=10").isDeletion(now: now) == false)  // Max-Age wins
        #expect(SetCookieLine.parse("__Host-actas_session=x", requestPath: "/", now: now) == .failure(.proxyOwned))
        #expect(SetCookieLine.parse("=__Host-actas_session=x", requestPath: "/", now: now) == .failure(.proxyOwned))
        #expect(SetCookieLine.parse("a b=1", requestPath: "/", now: now) == .failure(.invalid))
        // An attribute that could smuggle a second cookie into a restoration is not kept.
        #expect(try parsed("a=1; Domain=x;y; SameSite=Lax").domain == "x")
    }

    @Test func onlyScriptReadableCookiesGoToTheBrowser() throws {
        #expect(CookiePassThrough.passes(try parsed("csrftoken=a"), browserHoldsAppValue: false, now: now))
        #expect(!CookiePassThrough.passes(try parsed("sessionid=a; HttpOnly"), browserHoldsAppValue: true, now: now))
        // A deletion only of what this session put there: not the administrator's own cookie.
        let deletion = try parsed("sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/")
        #expect(!CookiePassThrough.passes(deletion, browserHoldsAppValue: false, now: now))
        #expect(CookiePassThrough.passes(deletion, browserHoldsAppValue: true, now: now))
    }

    @Test func restorationPutsBackTheOwnValueOrDeletes() throws {
        let last = try parsed("csrftoken=app; Max-Age=600; Path=/; SameSite=Lax; Secure")
        let key = CookiePassThrough.Key(name: "csrftoken", path: "/", domain: nil)
        #expect(CookiePassThrough.restoration(of: key, last: last, own: "mine", now: now)
                == "csrftoken=mine; Path=/; Expires=\(CookiePassThrough.httpDate(now + 600)); Secure; SameSite=Lax")
        #expect(CookiePassThrough.restoration(of: key, last: last, own: nil, now: now)
                == "csrftoken=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=Lax")
        let hostOnly = try parsed("x=1", path: "/a/b")  // no Path written: the same default path again
        #expect(CookiePassThrough.restoration(of: .init(name: "x", path: "/a", domain: nil), last: hostOnly, own: "v", now: now) == "x=v")
        #expect(!CookiePassThrough.isRestorable("a;b") && !CookiePassThrough.isRestorable("a\u{0}") && CookiePassThrough.isRestorable("a b"))
    }

    @Test func theAdministratorsRequestsCarryTheirOwnValues() {
        let browser = CookiePassThrough.browserCookies([("Cookie", "__Host-actas_session=S; csrftoken=APP; theme=dark"),
                                                        ("cookie", "csrftoken=older; flag")])
        #expect(browser.map(\.name) == ["__Host-actas_session", "csrftoken", "theme", "csrftoken", ""])
        #expect(CookiePassThrough.administratorCookies(browser, passedNames: ["csrftoken"], own: ["csrftoken": "MINE"])
                == "csrftoken=MINE; theme=dark; flag")
        #expect(CookiePassThrough.administratorCookies(browser, passedNames: ["csrftoken", "theme"], own: [:]) == "flag")
        #expect(CookiePassThrough.administratorCookies([("__host-ACTAS_x", "1")], passedNames: [], own: [:]) == nil)
    }

    @Test func browserCookiesSplitTrimAndKeepOrder() {
        let pairs = CookiePassThrough.browserCookies(values: [" a=1 ;;\tb = x=y\t; ;flag;", "", "c=; =v;é=ü"])
        #expect(pairs.map(\.name) == ["a", "b ", "flag", "c", "", "é"].map { $0 == "flag" ? "" : $0 })
        #expect(pairs.map(\.value) == ["1", " x=y", "flag", "", "v", "ü"])
        #expect(CookiePassThrough.browserCookies([("Set-Cookie", "x=1"), ("COOKIE", "y=2"), ("cookies", "z=3")]).map(\.name) == ["y"])
    }

    @Test func theJarLearnsOwnValuesUntilTheAppsValueIsInTheBrowser() {
        let jar = CookieJar()
        jar.noteBrowserCookies([("csrftoken", "MINE"), ("__Host-actas_session", "S"), ("csrftoken", "second")])
        #expect(jar.store("csrftoken=APP; Path=/", requestPath: "/", now: now) == .stored(passToBrowser: true))
        #expect(jar.store("sessionid=emp; HttpOnly; Path=/", requestPath: "/", now: now) == .stored(passToBrowser: false))
        #expect(jar.store("sessionid=; Max-Age=0; Path=/", requestPath: "/", now: now) == .stored(passToBrowser: false))
        jar.noteBrowserCookies([("csrftoken", "APP"), ("late", "L")])
        #expect(jar.browserSide.own == ["csrftoken": "MINE", "late": "L"])
        #expect(jar.header(for: "/", now: now) == "csrftoken=APP")  // the app gets the session's values only
        #expect(jar.restoration(now: now) == ["csrftoken=MINE; Path=/"])
    }

    // MARK: which browser gets the restoration (CookieJars)

    func acting(_ signIns: [String]) -> (LiveState, ImpersonationSession, CookieJars) {
        let live = LiveState()
        for hash in signIns {
            live.apply(sessionHash: hash, session: SignInSession(idHash: hash, userID: "usr_admin", csrfToken: "c", createdAt: now,
                                                                 expiresAt: now + 3600, clientIP: ""))
        }
        let imp = ImpersonationSession(id: "imp_1", actorID: "usr_admin", targetID: "usr_t", reason: "ticket", mode: .readWrite,
                                       startedAt: now, expiresAt: now + 600, signInSession: signIns[0])
        live.apply(impersonationID: imp.id, session: imp)
        let jars = CookieJars()
        let jar = jars.jar(for: imp, live: live)
        jar.noteBrowserCookies([("csrftoken", "MINE")])
        _ = jar.store("csrftoken=APP; Path=/", requestPath: "/", now: now)
        return (live, imp, jars)
    }

    @Test func theSignInThatActedGetsItOnceAfterTheEnd() {
        let (live, imp, jars) = acting(["a", "b"])
        #expect(jars.takeRestoration(signIn: "a", live: live) == nil)  // still acting
        #expect(jars.administratorCookies(signIn: "a", fields: [("Cookie", "csrftoken=APP")], live: live) == nil)
        _ = live.end(impersonationID: imp.id, at: now, reason: .exit)
        #expect(jars.takeRestoration(signIn: "b", live: live) == nil)  // another browser, still signed in: not its cookies
        #expect(jars.administratorCookies(signIn: "a", fields: [("Cookie", "csrftoken=APP; x=1")], live: live) == .some("csrftoken=MINE; x=1"))
        #expect(jars.takeRestoration(signIn: "a", live: live, now: now) == "Set-Cookie: csrftoken=MINE; Path=/\r\n")
        #expect(jars.takeRestoration(signIn: "a", live: live, now: now) == nil)
        #expect(jars.administratorCookies(signIn: "a", fields: [("Cookie", "csrftoken=APP")], live: live) == nil)
    }

    @Test func aGoneSignInsCookiesGoToTheAdministratorsNextSignIn() {
        let (live, imp, jars) = acting(["a", "b"])
        _ = live.end(impersonationID: imp.id, at: now, reason: .actorSignedOut)
        live.apply(sessionHash: "a", session: nil)
        #expect(jars.takeRestoration(signIn: "nobody", live: live) == nil)
        #expect(jars.takeRestoration(signIn: "b", live: live, now: now) == "Set-Cookie: csrftoken=MINE; Path=/\r\n")
    }
}
