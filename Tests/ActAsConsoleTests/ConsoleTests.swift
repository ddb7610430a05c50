import ActAsAudit
import ActAsConfig
import ActAsCore
import ActAsCrypto
@testable import ActAsPages
import ActAsSessions
import ActAsStore
import Foundation
import Synchronization
import Testing
@testable import ActAsConsole

private let host = "app.example.com"
private let now = Date(timeIntervalSince1970: 1_800_000_000)
private let fastHasher = PasswordHasher(logN: 10, blockSize: 8, parallelism: 1)

final class RecordingSink: AuditSink {
    let records = Mutex<[AuditRecord]>([])
    func record(_ record: AuditRecord) { records.withLock { $0.append(record) } }
    var types: [AuditEventType] { records.withLock { $0.map(\.type) } }
}

/// A console on a fresh SQLite store, with users alice (employee, password "pw-alice"),
/// ivy (invited, "pw-ivy") and sam (suspended, "pw-sam").
struct Harness {
    let console: Console
    let store: SQLiteStore
    let live: LiveState
    let sink: RecordingSink
    let path: String

    static func with<T>(config text: String = "", _ body: (Harness) async throws -> T) async throws -> T {
        let configPath = FileManager.default.temporaryDirectory.appendingPathComponent("actas-console-\(UUID().uuidString)/proxy.conf").path
        guard case .success(let loaded) = ConfigLoader(path: configPath, environment: [:]).load(text: text) else {
            throw HarnessError.config
        }
        let path = (configPath as NSString).deletingLastPathComponent + "/actas.db"
        let store = try await SQLiteStore.open(path: path)
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try await store.migrate()
            let live = LiveState()
            try await StateSync(store: store, state: live).loadSnapshot(now: now)
            let directory = Directory(store: store, live: live, knownRoles: loaded.config.roles.order, hasher: fastHasher)
            var alice = UserRecordInput(username: "alice")
            alice.password = "pw-alice"
            alice.email = "alice@example.com"
            alice.name = "Alice Example"
            alice.groups = ["sales", "emea"]
            alice.orgUnit = "acme/emea"
            var ivy = UserRecordInput(username: "ivy")
            ivy.password = "pw-ivy"
            ivy.status = .invited
            var sam = UserRecordInput(username: "sam")
            sam.password = "pw-sam"
            sam.status = .suspended
            _ = try await directory.save([alice, ivy, sam], now: now)
            let sink = RecordingSink()
            let console = Console(config: loaded.config, directory: directory, live: live, events: sink)
            let result = try await body(Harness(console: console, store: store, live: live, sink: sink, path: path))
            await store.close()
            try? FileManager.default.removeItem(atPath: folder)
            return result
        } catch {
            await store.close()
            try? FileManager.default.removeItem(atPath: folder)
            throw error
        }
    }

    enum HarnessError: Error { case config, noSession }

    func send(_ method: String, _ target: String, headers: [(name: String, value: String)] = [], body: String = "",
              principal: LiveState.Principal? = nil, authentication: ConsoleRequest.Authentication? = nil,
              clientIP: String = "192.0.2.10", at time: Date = now) async -> ConsoleResponse {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let request = ConsoleRequest(
            method: method, path: String(parts[0]), query: parts.count > 1 ? String(parts[1]) : "",
            headers: [("host", host)] + headers, body: Array(body.utf8), clientIP: clientIP, requestID: "req-test",
            principal: principal, authentication: authentication ?? (principal == nil ? .none : .session), now: time)
        return await console.handle(request)
    }

    /// GET the login page; returns the login cookie's value.
    func loginToken() async throws -> String {
        let page = await send("GET", "/.actas/login")
        let cookie = try #require(page.setCookies.first { $0.hasPrefix("__Host-actas_login=") })
        return String(cookie.dropFirst("__Host-actas_login=".count).prefix { $0 != ";" })
    }

    func postLogin(username: String, password: String, rd: String? = nil, token: String? = nil, origin: String? = "https://\(host)",
                   extraHeaders: [(name: String, value: String)] = [], clientIP: String = "192.0.2.10", at time: Date = now) async throws -> ConsoleResponse {
        let csrf = try await loginToken()
        var form = "csrf_token=\(FormCoding.encode(token ?? csrf))&username=\(FormCoding.encode(username))&password=\(FormCoding.encode(password))"
        if let rd { form += "&rd=\(FormCoding.encode(rd))" }
        var headers: [(name: String, value: String)] = [("content-type", "application/x-www-form-urlencoded"), ("cookie", "__Host-actas_login=\(csrf)")]
        if let origin { headers.append(("origin", origin)) }
        return await send("POST", "/.actas/login", headers: headers + extraHeaders, body: form, clientIP: clientIP, at: time)
    }

    /// Signs in and returns the principal the proxy would resolve from the new cookie.
    func signIn(_ username: String, _ password: String) async throws -> (cookie: String, principal: LiveState.Principal) {
        let response = try await postLogin(username: username, password: password)
        let cookie = try #require(response.sessionCookieValue)
        let principal = try #require(live.principal(sessionHash: Secrets.hash(cookie), now: now))
        return (cookie, principal)
    }
}

extension ConsoleResponse {
    var setCookies: [String] { headers.filter { $0.name.lowercased() == "set-cookie" }.map(\.value) }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
    var errorCode: String? { json?["error"] as? String }
    var sessionCookieValue: String? {
        setCookies.first { $0.hasPrefix("__Host-actas_session=") }
            .map { String($0.dropFirst("__Host-actas_session=".count).prefix { $0 != ";" }) }
            .flatMap { $0.isEmpty ? nil : $0 }
    }
}

private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
    return false
}

@Suite("Console over HTTP")
struct ConsoleTests {
    // MARK: login page

    @Test func loginPageSetsTheLoginCookieAndAMatchingHiddenToken() async throws {
        try await Harness.with { h in
            let page = await h.send("GET", "/.actas/login?rd=%2Fapp%3Fx%3D1", headers: [("accept", "text/html")])
            #expect(page.status == 200)
            #expect(page.header("content-type")?.hasPrefix("text/html") == true)
            let cookie = try #require(page.setCookies.first { $0.hasPrefix("__Host-actas_login=") })
            let attributes = cookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            let token = String(attributes[0].dropFirst("__Host-actas_login=".count))
            #expect(Base64URL.decode(token)?.count == 32)
            #expect(attributes.contains("Path=/"))
            #expect(attributes.contains("Secure"))
            #expect(attributes.contains("HttpOnly"))
            #expect(attributes.contains { $0.hasPrefix("SameSite=") })
            #expect(!attributes.contains { $0.lowercased().hasPrefix("domain") })
            #expect(page.text.contains("name=\"csrf_token\" value=\"\(token)\""))
            #expect(page.text.contains("name=\"rd\" value=\"/app?x=1\""))
            #expect(page.header("x-frame-options") == "DENY")
            #expect(page.header("content-security-policy")?.contains("frame-ancestors 'none'") == true)
            #expect(page.header("cache-control") == "no-store")
        }
    }

    @Test func loginPageReusesAWellFormedCookieAndReplacesAJunkOne() async throws {
        try await Harness.with { h in
            let token = Secrets.csrfToken()
            let again = await h.send("GET", "/.actas/login", headers: [("cookie", "__Host-actas_login=\(token)")])
            #expect(again.setCookies.isEmpty)
            #expect(again.text.contains("value=\"\(token)\""))
            let junk = await h.send("GET", "/.actas/login", headers: [("cookie", "__Host-actas_login=\"><script>")])
            #expect(junk.setCookies.count == 1)
            #expect(!junk.text.contains("<script>"))
        }
    }

    @Test(arguments: ["//evil.com", "https://evil.com", "/\\evil.com", "/%09/evil.com", "javascript:alert(1)"])
    func loginPageNeverCarriesAForeignReturnPath(rd: String) async throws {
        try await Harness.with { h in
            let page = await h.send("GET", "/.actas/login?rd=\(FormCoding.encode(rd))")
            #expect(page.text.contains("name=\"rd\" value=\"/\""))
        }
    }

    // MARK: login POST

    /// A script (no `Origin`, no `Sec-Fetch-Site`: no browser) signs in with the form's token and
    /// cookie, and without them it does not.
    @Test func scriptsWithoutOriginOrFetchMetadataSignInWithTheFormTokenOnly() async throws {
        try await Harness.with { h in
            let response = try await h.postLogin(username: "alice", password: "pw-alice", origin: nil)
            #expect(response.status == 303)
            #expect(response.sessionCookieValue != nil)
            let noToken = await h.send("POST", "/.actas/login", headers: [("content-type", "application/x-www-form-urlencoded")],
                                       body: "username=alice&password=pw-alice")
            #expect(noToken.status == 403)
            #expect(noToken.errorCode == "csrf")
            #expect(noToken.sessionCookieValue == nil)
            let wrongToken = try await h.postLogin(username: "alice", password: "pw-alice", token: Secrets.csrfToken(), origin: nil)
            #expect(wrongToken.status == 403)
            #expect(wrongToken.sessionCookieValue == nil)
        }
    }

    @Test func aNullOriginIsNotAScript() async throws {
        try await Harness.with { h in
            let response = try await h.postLogin(username: "alice", password: "pw-alice", origin: "null")
            #expect(response.status == 403)
            #expect(response.sessionCookieValue == nil)
        }
    }

    @Test(arguments: ["https://evil.com", "https://app.example.com.evil.com", "http://app.example.com", "https://app.example.com:8443",
                      "https://evil.com/https://app.example.com", "https://app.example.com/"])
    func loginFromAnotherOriginIsRefused(origin: String) async throws {
        try await Harness.with { h in
            let response = try await h.postLogin(username: "alice", password: "pw-alice", origin: origin)
            #expect(response.status == 403)
            #expect(response.errorCode == "csrf")
            #expect(response.sessionCookieValue == nil)
        }
    }

    @Test(arguments: ["cross-site", "same-site", "none"])
    func crossSiteFetchMetadataIsRefused(site: String) async throws {
        try await Harness.with { h in
            let response = try await h.postLogin(username: "alice", password: "pw-alice", origin: nil, extraHeaders: [("sec-fetch-site", site)])
            #expect(response.status == 403)
        }
    }

    @Test func sameOriginFetchMetadataWithoutOriginIsEnough() async throws {
        try await Harness.with { h in
            let response = try await h.postLogin(username: "alice", password: "pw-alice", origin: nil, extraHeaders: [("sec-fetch-site", "same-origin")])
            #expect(response.status == 303)
        }
    }

    @Test func wrongOrMissingLoginTokenIsRefused() async throws {
        try await Harness.with { h in
            let wrong = try await h.postLogin(username: "alice", password: "pw-alice", token: Secrets.csrfToken())
            #expect(wrong.status == 403)
            #expect(wrong.errorCode == "csrf")
            // No cookie and no field: empty equals empty must not pass.
            let bare = await h.send("POST", "/.actas/login", headers: [("content-type", "application/x-www-form-urlencoded"), ("origin", "https://\(host)")],
                                    body: "username=alice&password=pw-alice&csrf_token=")
            #expect(bare.status == 403)
            #expect(h.live.read { $0.sessions.isEmpty })
        }
    }

    @Test func goodLoginSetsTheSessionCookieAndRedirectsToTheReturnPath() async throws {
        try await Harness.with { h in
            let response = try await h.postLogin(username: "alice", password: "pw-alice", rd: "/app/orders?id=7#top")
            #expect(response.status == 303)
            #expect(response.header("location") == "/app/orders?id=7#top")
            let cookie = try #require(response.setCookies.first { $0.hasPrefix("__Host-actas_session=") })
            let value = try #require(response.sessionCookieValue)
            #expect(value.count == 43)
            #expect(cookie.hasPrefix("__Host-actas_session=\(value); Path=/; Secure; HttpOnly; SameSite=Lax"))
            #expect(!cookie.lowercased().contains("domain"))
            // The one-off login cookie is cleared.
            #expect(response.setCookies.contains { $0.hasPrefix("__Host-actas_login=;") && $0.contains("Max-Age=0") })
            let principal = try #require(h.live.principal(sessionHash: Secrets.hash(value), now: now))
            #expect(principal.user.username == "alice")
            #expect(try await h.store.session(idHash: Secrets.hash(value)) != nil)
            #expect(try await h.store.session(idHash: value) == nil)
            #expect(h.sink.types.contains(.login))
        }
    }

    @Test(arguments: ["//evil.com", "https://evil.com/x", "/\\evil.com", "/%2f/evil.com", "javascript:alert(1)", ""])
    func goodLoginWithAForeignReturnPathGoesHome(rd: String) async throws {
        try await Harness.with { h in
            let response = try await h.postLogin(username: "alice", password: "pw-alice", rd: rd)
            #expect(response.status == 303)
            #expect(response.header("location") == "/")
        }
    }

    @Test func invitedUsersMaySignInAndBecomeActive() async throws {
        try await Harness.with { h in
            let response = try await h.postLogin(username: "ivy", password: "pw-ivy")
            #expect(response.status == 303)
            #expect(try await h.store.user(username: "ivy")?.status == .active)
            #expect(try await h.store.user(username: "ivy")?.lastLogin == now)
        }
    }

    @Test func suspendedUsersAreToldOnlyWithTheRightPassword() async throws {
        try await Harness.with { h in
            let right = try await h.postLogin(username: "sam", password: "pw-sam")
            #expect(right.status == 403)
            #expect(right.sessionCookieValue == nil)
            let wrong = try await h.postLogin(username: "sam", password: "nope")
            #expect(wrong.status == 401)
            #expect(!wrong.text.contains("suspended"))
        }
    }

    @Test func unknownUserAndWrongPasswordLookTheSame() async throws {
        try await Harness.with { h in
            let unknown = try await h.postLogin(username: "nobody", password: "pw")
            let wrong = try await h.postLogin(username: "alice", password: "pw")
            #expect(unknown.status == 401 && wrong.status == 401)
            let sentence = "The username or password is not right."
            #expect(unknown.text.contains(sentence) && wrong.text.contains(sentence))
            #expect(unknown.setCookies.count == wrong.setCookies.count)
        }
    }

    /// Issue 21 item 7: failures slow down their own (account, network) bucket; they do not
    /// lock the account for everyone. Five free failures, then waits of 1, 2, 4 … seconds.
    @Test func theSixthFailureFromOneNetworkIsSlowedDownNotLockedOut() async throws {
        try await Harness.with { h in
            for attempt in 1...5 {
                let response = try await h.postLogin(username: attempt.isMultiple(of: 2) ? "ALICE" : "alice", password: "wrong \(attempt)",
                                                     clientIP: "198.51.100.\(attempt)", at: now + Double(attempt))
                #expect(response.status == 401)
            }
            // From the same /24, even the right password is not checked now.
            let limited = try await h.postLogin(username: "alice", password: "pw-alice", clientIP: "198.51.100.99", at: now + 5)
            #expect(limited.status == 429)
            #expect(limited.header("retry-after") == "1")
            #expect(limited.sessionCookieValue == nil)
            // Another account is unaffected.
            let ivy = try await h.postLogin(username: "ivy", password: "pw-ivy", clientIP: "198.51.100.99", at: now + 5)
            #expect(ivy.status == 303)
            // The owner, from another network, gets in at once.
            let owner = try await h.postLogin(username: "alice", password: "pw-alice", clientIP: "203.0.113.7", at: now + 5)
            #expect(owner.status == 303)
            // And after the Retry-After the slowed network may try again.
            let later = try await h.postLogin(username: "alice", password: "pw-alice", clientIP: "198.51.100.99", at: now + 6)
            #expect(later.status == 303)
        }
    }

    /// The limit is checked before the password and the failure counted after it, so guesses
    /// sent in parallel all pass the check while the first ones are still in scrypt: the
    /// per-account limit of 5 does not bound how many passwords get tried. Fix: count the
    /// attempt before verifying (refund it on success), under the limiter's lock.
    @Test func parallelGuessesAreLimitedToo() async throws {
        try await Harness.with { h in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for attempt in 0..<20 {
                    group.addTask {
                        try await h.postLogin(username: "alice", password: "guess \(attempt)", clientIP: "203.0.113.\(attempt)").status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            let checked = statuses.filter { $0 == 401 }.count
            #expect(checked <= 5, "\(checked) passwords were tried against one account (limit 5)")
            #expect(statuses.filter { $0 == 429 }.count >= 15)
        }
    }

    @Test func emptyFieldsAreABadRequestNotAFailure() async throws {
        try await Harness.with { h in
            for _ in 0..<7 {
                let response = try await h.postLogin(username: "alice", password: "")
                #expect(response.status == 400)
            }
            #expect(try await h.postLogin(username: "alice", password: "pw-alice").status == 303)
        }
    }

    /// swift-mustache escapes per Character (grapheme cluster): `"` followed by a combining
    /// mark (U+0301) is one Character that is not `"`, so it is written raw and the browser
    /// sees a bare `"` that ends the attribute. The login page echoes the submitted username
    /// into `value="{{username}}"`, so a crafted name breaks out of the attribute (CSP stops
    /// inline handlers, but not injected attributes such as `formaction`/`style`/`autofocus`).
    /// Fix: escape byte-wise (`utf8`/`unicodeScalars`) with a custom content type, or
    /// pre-escape every value put in the context.
    @Test func templatesEscapeQuotesEvenWhenACombiningMarkFollows() async throws {
        try await Harness.with { h in
            let payload = "x\"\u{301} autofocus onfocus=alert(1) y=\"\u{301}"
            let response = try await h.postLogin(username: payload, password: "nope")
            #expect(response.status == 401)
            let rawQuoteThenMark = contains(response.body, [0x22, 0xCC, 0x81])
            #expect(!rawQuoteThenMark, "a raw quote followed by U+0301 reached the page")
        }
    }

    @Test func passwordSignInCanBeDisabled() async throws {
        try await Harness.with(config: "[auth]\nmethods = [\"token\"]\n") { h in
            #expect(await h.send("GET", "/.actas/login").status == 404)
            let response = await h.send("POST", "/.actas/login", headers: [("origin", "https://\(host)")], body: "username=alice&password=pw-alice")
            #expect(response.status == 404)
        }
    }

    // MARK: logout

    /// SPEC §4: `GET /.actas/logout` is a page with the button; it signs nobody out.
    @Test func logoutByGETShowsThePageAndChangesNothing() async throws {
        try await Harness.with { h in
            let (_, principal) = try await h.signIn("alice", "pw-alice")
            let response = await h.send("GET", "/.actas/logout", principal: principal)
            #expect(response.status == 200)
            #expect(h.live.principal(sessionHash: try #require(principal.session).idHash, now: now) != nil)
            let put = await h.send("PUT", "/.actas/logout", principal: principal)
            #expect(put.status == 405)
            #expect(put.header("allow") == "GET, HEAD, POST")
        }
    }

    @Test func logoutWithoutCSRFIsRefused() async throws {
        try await Harness.with { h in
            let (_, principal) = try await h.signIn("alice", "pw-alice")
            let session = try #require(principal.session)
            let noToken = await h.send("POST", "/.actas/logout", headers: [("origin", "https://\(host)")], principal: principal)
            #expect(noToken.status == 403)
            #expect(noToken.errorCode == "csrf")
            let crossSite = await h.send("POST", "/.actas/logout", headers: [("origin", "https://evil.com"), ("x-csrf-token", session.csrfToken)], principal: principal)
            #expect(crossSite.status == 403)
            let wrong = await h.send("POST", "/.actas/logout", headers: [("origin", "https://\(host)"), ("x-csrf-token", Secrets.csrfToken())], principal: principal)
            #expect(wrong.status == 403)
            #expect(h.live.principal(sessionHash: session.idHash, now: now) != nil)
        }
    }

    @Test func logoutWithCSRFEndsTheSessionEverywhere() async throws {
        try await Harness.with { h in
            let (cookie, principal) = try await h.signIn("alice", "pw-alice")
            let session = try #require(principal.session)
            let response = await h.send("POST", "/.actas/logout",
                                        headers: [("origin", "https://\(host)"), ("content-type", "application/x-www-form-urlencoded")],
                                        body: "csrf_token=\(FormCoding.encode(session.csrfToken))", principal: principal)
            #expect(response.status == 303)
            #expect(response.header("location") == "/.actas/login")
            #expect(response.setCookies.contains { $0.hasPrefix("__Host-actas_session=;") && $0.contains("Max-Age=0") })
            #expect(h.live.principal(sessionHash: Secrets.hash(cookie), now: now) == nil)
            #expect(try await h.store.session(idHash: Secrets.hash(cookie)) == nil)
            #expect(h.sink.types.contains(.logout))
        }
    }

    @Test func logoutWithTheHeaderToken() async throws {
        try await Harness.with { h in
            let (cookie, principal) = try await h.signIn("alice", "pw-alice")
            let response = await h.send("POST", "/.actas/logout", headers: [("sec-fetch-site", "same-origin"), ("x-csrf-token", principal.session!.csrfToken)], principal: principal)
            #expect(response.status == 303)
            #expect(h.live.principal(sessionHash: Secrets.hash(cookie), now: now) == nil)
        }
    }

    // MARK: /me and account

    @Test func meHasExactlyTheSpecShape() async throws {
        try await Harness.with { h in
            let (_, principal) = try await h.signIn("alice", "pw-alice")
            let response = await h.send("GET", "/.actas/api/v1/me", principal: principal)
            #expect(response.status == 200)
            #expect(response.header("content-type")?.hasPrefix("application/json") == true)
            let object = try #require(response.json)
            #expect(Set(object.keys) == ["user", "impersonation", "consent", "csrf_token"])
            let user = try #require(object["user"] as? [String: Any])
            #expect(Set(user.keys) == ["id", "username", "email", "name", "role", "groups", "org_unit"])
            #expect(user["username"] as? String == "alice")
            #expect(user["id"] as? String == principal.user.id)
            #expect(user["email"] as? String == "alice@example.com")
            #expect(user["name"] as? String == "Alice Example")
            #expect(user["role"] as? String == "employee")
            #expect(user["groups"] as? [String] == ["sales", "emea"])
            #expect(user["org_unit"] as? String == "acme/emea")
            #expect(object["impersonation"] is NSNull)
            let consent = try #require(object["consent"] as? [String: Any])
            #expect(Set(consent.keys) == ["active", "expires_at"])
            #expect(consent["expires_at"] is NSNull)
            #expect(response.text.contains("\"active\":false"))  // a JSON boolean, not 0
            #expect(object["csrf_token"] as? String == principal.session?.csrfToken)
        }
    }

    @Test func meShowsActiveConsentAsRFC3339() async throws {
        try await Harness.with { h in
            let (_, principal) = try await h.signIn("alice", "pw-alice")
            h.live.apply(consentOf: principal.user.id, consent: Consent(userID: principal.user.id, grantedAt: now, expiresAt: now + 7200))
            let object = try #require(await h.send("GET", "/.actas/api/v1/me", principal: principal).json)
            let consent = try #require(object["consent"] as? [String: Any])
            #expect(consent["active"] as? Bool == true)
            #expect(consent["expires_at"] as? String == "2027-01-15T10:00:00Z")
        }
    }

    @Test func meForAnAPITokenHasNoCSRFToken() async throws {
        try await Harness.with { h in
            let (token, _) = try await h.console.directory.createToken(for: "alice", name: "ci", now: now)
            let principal = try #require(h.live.principal(tokenHash: Secrets.hash(token)))
            let object = try #require(await h.send("GET", "/.actas/api/v1/me", principal: principal, authentication: .token).json)
            #expect(object["csrf_token"] is NSNull)
            #expect((object["user"] as? [String: Any])?["username"] as? String == "alice")
        }
    }

    @Test func unauthenticatedAPIIsA401JSONEvenForBrowsers() async throws {
        try await Harness.with { h in
            for accept in ["application/json", "text/html", "*/*"] {
                let response = await h.send("GET", "/.actas/api/v1/me", headers: [("accept", accept)])
                #expect(response.status == 401)
                #expect(response.errorCode == "unauthenticated")
                #expect(response.json?["message"] is String)
            }
        }
    }

    @Test func unauthenticatedPagesRedirectBrowsersToLogin() async throws {
        try await Harness.with { h in
            let browser = await h.send("GET", "/.actas/", headers: [("accept", "text/html")])
            #expect(browser.status == 302)
            #expect(browser.header("location") == "/.actas/login?rd=/.actas/")
            let script = await h.send("GET", "/.actas/")
            #expect(script.status == 401)
        }
    }

    @Test func theAccountPageEscapesNames() async throws {
        try await Harness.with { h in
            var evil = UserRecordInput(username: "mallory")
            evil.name = "<script>alert(1)</script>"
            evil.email = "<img src=x onerror=alert(2)>@example.com"
            evil.groups = ["<b>bold</b>"]
            evil.password = "pw-mallory"
            _ = try await h.console.directory.save([evil], now: now)
            let (_, principal) = try await h.signIn("mallory", "pw-mallory")
            let page = await h.send("GET", "/.actas/", headers: [("accept", "text/html")], principal: principal)
            #expect(page.status == 200)
            #expect(!page.text.contains("<script>alert(1)"))
            #expect(!page.text.contains("<img src=x"))
            #expect(!page.text.contains("<b>bold"))
            #expect(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        }
    }

    // MARK: JWKS and routing

    @Test func jwksBeforeAndAfterTheFirstKey() async throws {
        try await Harness.with { h in
            #expect(await h.send("GET", "/.well-known/actas/jwks.json").status == 503)
            try await KeyManager.ensureSigningKey(h.store, now: now)
            try await StateSync(store: h.store, state: h.live).loadSnapshot(now: now)
            let response = await h.send("GET", "/.well-known/actas/jwks.json")
            #expect(response.status == 200)
            let keys = try #require(response.json?["keys"] as? [[String: Any]])
            #expect(keys.count == 1)
            #expect(keys.first?["kid"] as? String == h.live.keyRing?.signing.kid)
            #expect(keys.first?["d"] == nil)
            #expect(await h.send("POST", "/.well-known/actas/jwks.json").status == 405)
        }
    }

    @Test func unknownConsolePathsAre404() async throws {
        try await Harness.with { h in
            #expect(await h.send("GET", "/.actas/nope").status == 404)
            let (_, principal) = try await h.signIn("alice", "pw-alice")
            #expect(await h.send("GET", "/.actas/nope", principal: principal).status == 404)
        }
    }

    @Test func ownsOnlyItsPrefix() {
        #expect(Console.owns(path: "/.actas/login"))
        #expect(Console.owns(path: "/.actas"))
        #expect(Console.owns(path: "/.well-known/actas/jwks.json"))
        #expect(!Console.owns(path: "/.actasx"))
        #expect(!Console.owns(path: "/app/.actas/login"))
        #expect(!Console.owns(path: "/.well-known/other"))
    }
}
