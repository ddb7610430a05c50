import ActAsAudit
import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsIdentity
import ActAsPages
import ActAsSessions
import ActAsStore
import Foundation
import Synchronization

/// What the console needs from the configuration, computed once per (re)load.
public struct ConsoleSettings: Sendable {
    public var sessionTTL: TimeInterval
    public var passwordEnabled: Bool
    public var warnBeforeEnd: TimeInterval
    /// For the sign-in throttle's client address (`SignInClient`).
    public var trustedProxies: [CIDR]

    public init(config: ActAsConfig) {
        sessionTTL = config.auth.sessionTTL.seconds
        passwordEnabled = config.auth.passwordEnabled
        warnBeforeEnd = config.impersonation.warnBeforeEnd.seconds
        trustedProxies = config.listen.trustedProxies
    }
}

/// `/.actas/…`: sign-in, the account page, the JSON API, and the JWKS. Low volume, so
/// handlers are async and may read the store; everything the request path enforces is
/// applied to the live state before a handler returns.
public final class Console: ConsoleEndpoint {
    /// As of the last (re)load: each request reads it once.
    public var settings: ConsoleSettings { currentSettings.withLock { $0 } }
    private let currentSettings: Mutex<ConsoleSettings>
    /// `[auth.oidc]`'s provider (ConsoleOIDC.swift); nil without `"oidc"` in `auth.methods`.
    let oidcProvider = Mutex<OIDCProvider?>(nil)
    public let directory: Directory
    public let live: LiveState
    public let events: any AuditSink
    public let limiter: LoginRateLimiter
    public let impersonations: Impersonations
    /// `GET /.actas/sessions/{id}/live` (ConsoleLive.swift).
    public let liveFeed: SessionLiveFeed
    public var warnBeforeEnd: TimeInterval { settings.warnBeforeEnd }

    public static let prefix = ConsoleRoutes.prefix
    public static let jwksPath = ConsoleRoutes.jwksPath

    public init(config: ActAsConfig, directory: Directory, live: LiveState, events: any AuditSink) {
        self.currentSettings = Mutex(ConsoleSettings(config: config))
        self.directory = directory
        self.live = live
        self.events = events
        self.impersonations = Impersonations(store: directory.store, live: live, policy: ImpersonationPolicy(config: config), events: events)
        self.liveFeed = SessionLiveFeed(store: directory.store, live: live, instance: InstanceRecord.resolveID(
            configured: config.listen.instanceID, hostName: ProcessInfo.processInfo.hostName, adminPort: config.listen.admin?.port))
        self.limiter = LoginRateLimiter(
            maxPerAccount: config.auth.maxFailedLogins, maxPerAddress: config.auth.maxFailedLoginsPerIP,
            window: config.auth.failedLoginWindow.seconds)
    }

    /// SIGHUP: `[auth]` (methods, session_ttl, sign-in limits), `[roles]` and `[impersonation]`
    /// for every decision from now on; running sessions the new policy ends or shortens are
    /// ended or shortened before this returns.
    @discardableResult
    public func apply(config: ActAsConfig, now: Date = Date()) -> Impersonations.PolicyReloadOutcome {
        currentSettings.withLock { $0 = ConsoleSettings(config: config) }
        limiter.update(
            maxPerAccount: config.auth.maxFailedLogins, maxPerAddress: config.auth.maxFailedLoginsPerIP,
            window: config.auth.failedLoginWindow.seconds)
        return impersonations.apply(policy: ImpersonationPolicy(config: config), now: now)
    }

    /// Whether a request path is the console's rather than the application's.
    public static func owns(path: String) -> Bool {
        path == "/.actas" || path.hasPrefix(prefix) || path == jwksPath
    }

    public func handle(_ request: ConsoleRequest) async -> ConsoleResponse {
        do {
            return allowingProviderSignOut(try await route(request))
        } catch let error as StoreError {
            return problem(request, status: 503, code: "store_unavailable",
                           message: "ActAs cannot reach its store right now (\(error)). Try again in a moment.")
        } catch {
            return problem(request, status: 500, code: "internal_error", message: "Something went wrong: \(error).")
        }
    }

    private func route(_ request: ConsoleRequest) async throws -> ConsoleResponse {
        let method = request.method == "HEAD" ? "GET" : request.method
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(2)  // "", ".actas"
        switch (method, request.path) {
        case ("GET", Self.jwksPath): return jwks()
        case (_, Self.jwksPath): return methodNotAllowed(request, allow: "GET, HEAD")
        case (_, "/.actas"): return .redirect(308, to: Self.prefix)
        case ("GET", "/.actas/console.css"): return .asset("text/css; charset=utf-8", Templates.css)
        case ("GET", Banner.jsPath): return .asset("text/javascript; charset=utf-8", Banner.bannerJS)
        case ("GET", Self.liveScriptPath): return .asset("text/javascript; charset=utf-8", Self.liveScript)
        case ("GET", Banner.cssPath): return .asset("text/css; charset=utf-8", Banner.bannerCSS)
        case ("GET", "/.actas/login"): return loginPage(request)
        case (_, Self.oidcStartPath), (_, Self.oidcCallbackPath), (_, Self.backchannelLogoutPath):
            if let answer = try await routeOIDC(request, method: method) { return answer }
        case ("POST", "/.actas/login"): return try await login(request)
        case (_, "/.actas/login"): return methodNotAllowed(request, allow: "GET, HEAD, POST")
        case ("GET", "/.actas/logout"): return logoutPage(request)
        case ("POST", "/.actas/logout"): return try await logout(request)
        default: break
        }
        if let allow = Self.allowedMethods[request.path], !allow.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == request.method }) {
            return methodNotAllowed(request, allow: allow)
        }
        // Everything else is for signed-in people.
        guard let principal = request.principal else {
            if Self.knownPath(request.path) { return signInRequired(request) }
            return problem(request, status: 404, code: "not_found", message: "There is no console page at \(request.path).")
        }
        switch (method, request.path) {
        case ("GET", "/.actas/"): return try await account(request, principal)
        case ("GET", "/.actas/api/v1/me"): return .json(200, me(principal, now: request.now))
        case ("POST", "/.actas/consent"): return try await consentForm(request, principal)
        case ("POST", "/.actas/api/v1/consent"): return try await consentAPI(request, principal, grant: true)
        case ("DELETE", "/.actas/api/v1/consent"): return try await consentAPI(request, principal, grant: false)
        case ("GET", "/.actas/users"): return usersPage(request, principal)
        case ("GET", "/.actas/api/v1/users"): return usersAPI(request, principal)
        case ("POST", "/.actas/impersonate"): return try await startForm(request, principal)
        case ("POST", "/.actas/impersonate/exit"): return try await exitForm(request, principal)
        case ("POST", "/.actas/impersonate/extend"): return try await extendForm(request, principal)
        case ("POST", "/.actas/api/v1/impersonation"): return try await startAPI(request, principal)
        case ("PATCH", "/.actas/api/v1/impersonation"): return try await extendAPI(request, principal)
        case ("DELETE", "/.actas/api/v1/impersonation"): return try await exitAPI(request, principal)
        case ("GET", "/.actas/ended"): return try await endedPage(request, principal)
        case ("GET", "/.actas/sessions"): return try await sessionsPage(request, principal)
        case ("GET", "/.actas/api/v1/sessions"): return try await sessionsAPI(request, principal)
        default: break
        }
        if segments.count == 3, segments.first == "sessions", segments.last == "end" {
            let id = String(segments[segments.startIndex + 1])
            return method == "POST" ? try await endByTarget(request, principal, id: id) : methodNotAllowed(request, allow: "POST")
        }
        if segments.count == 3, segments.first == "sessions", segments.last == "live" {
            let id = String(segments[segments.startIndex + 1])
            return method == "GET" ? try await sessionLive(request, principal, id: id) : methodNotAllowed(request, allow: "GET, HEAD")
        }
        if method == "GET", segments.count == 2, segments.first == "sessions", let id = segments.last, !id.isEmpty {
            return try await sessionPage(request, principal, id: String(id))
        }
        if method == "GET", segments.count == 5, Array(segments[...].prefix(3)) == ["api", "v1", "sessions"], segments.last == "events" {
            return try await sessionEventsAPI(request, principal, id: String(segments[segments.startIndex + 3]))
        }
        if method == "GET", segments.count == 2, segments.first == "users", let username = segments.last, !username.isEmpty {
            return confirmPage(request, principal, username: FormCoding.percentDecode(username))
        }
        if let allow = Self.allowedMethods[request.path] {
            return methodNotAllowed(request, allow: allow)
        }
        return problem(request, status: 404, code: "not_found", message: "There is no console page at \(request.path).")
    }

    /// State-changing URLs and what they allow: any other method (GET included) is `405`.
    static let allowedMethods: [String: String] = [
        "/.actas/logout": "GET, HEAD, POST",
        "/.actas/": "GET, HEAD",
        "/.actas/api/v1/me": "GET, HEAD",
        "/.actas/consent": "POST",
        "/.actas/api/v1/consent": "POST, DELETE",
        "/.actas/users": "GET, HEAD",
        "/.actas/api/v1/users": "GET, HEAD",
        "/.actas/impersonate": "POST",
        "/.actas/impersonate/exit": "POST",
        "/.actas/impersonate/extend": "POST",
        "/.actas/api/v1/impersonation": "POST, PATCH, DELETE",
        "/.actas/ended": "GET, HEAD",
        "/.actas/sessions": "GET, HEAD",
        "/.actas/api/v1/sessions": "GET, HEAD",
    ]

    static func knownPath(_ path: String) -> Bool {
        allowedMethods[path] != nil || path.hasPrefix("/.actas/users/") || path.hasPrefix("/.actas/sessions")
            || path.hasPrefix("/.actas/api/v1/")
    }

    // MARK: sign-in

    func loginPage(_ request: ConsoleRequest, error: String? = nil, status: Int = 200, username: String = "", extraHeaders: [(name: String, value: String)] = []) -> ConsoleResponse {
        let oidcLabel = oidcButtonLabel
        guard settings.passwordEnabled || oidcLabel != nil else {
            return problem(request, status: 404, code: "not_found", message: "Password sign-in is not enabled here.")
        }
        // Reuse a well-formed login cookie so two open sign-in tabs both keep working.
        let existing = request.cookie(ActAsCookies.login).flatMap { Base64URL.decode($0)?.count == 32 ? $0 : nil }
        let token = existing ?? Secrets.csrfToken()
        let rd = ReturnPath.sanitise(request.queryValue("rd") ?? request.formValue("rd"))
        var context: [String: Any] = ["csrf": token, "rd": rd, "rdQuery": FormCoding.encode(rd), "username": username]
        if let error { context["error"] = error }
        // SPEC §10.3: the password form only when `password` is on; a "Sign in with …" link for OIDC.
        if settings.passwordEnabled { context["password"] = true }
        if let oidcLabel { context["oidc"] = oidcLabel }
        var headers = extraHeaders
        if existing == nil {
            headers.append(("Set-Cookie", "\(ActAsCookies.login)=\(token); Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"))
        }
        return .html(status, Templates.page(title: "Sign in", "login", context), headers: headers)
    }

    func login(_ request: ConsoleRequest) async throws -> ConsoleResponse {
        guard settings.passwordEnabled else {
            return problem(request, status: 404, code: "not_found", message: "Password sign-in is not enabled here.")
        }
        let field = request.formValue("csrf_token") ?? ""
        let cookie = request.cookie(ActAsCookies.login) ?? ""
        guard signInOriginAllowed(request), !cookie.isEmpty, constantTimeEquals(Array(field.utf8), Array(cookie.utf8)) else {
            return problem(request, status: 403, code: "csrf",
                           message: "The sign-in form expired or came from another site. Reload the page and sign in again.")
        }
        let username = (request.formValue("username") ?? "").trimmingCharacters(in: .whitespaces)
        let password = request.formValue("password") ?? ""
        let rd = ReturnPath.sanitise(request.formValue("rd"))
        guard !username.isEmpty, !password.isEmpty else {
            return loginPage(request, error: "Enter your username and password.", status: 400, username: username)
        }
        let keys = live.keyRing
        let device = keys.flatMap { keys in
            request.cookie(DeviceCookie.name).flatMap { DeviceCookie.verify($0, username: username, keys: keys) }
        }
        let client = SignInClient.address(
            peer: request.clientIP, forwardedFor: request.headers.filter { $0.name.lowercased() == "x-forwarded-for" }.map(\.value),
            trusted: settings.trustedProxies)
        let attempt = SignInAttempt(account: username, address: client, device: device)
        if let wait = limiter.begin(attempt, now: request.now) {
            events.record(AuditRecord(type: .loginFailed, requestID: request.requestID, clientIP: request.clientIP,
                                      reason: "rate_limited", target: username, authMethod: "password"))
            return loginPage(request, error: "Too many failed sign-ins. Try again in \(Self.describe(seconds: wait)).",
                             status: 429, username: username, extraHeaders: [("Retry-After", "\(wait)")])
        }
        switch try await directory.signIn(username: username, password: password, clientIP: request.clientIP,
                                          ttl: settings.sessionTTL, now: request.now) {
        case .signedIn(let user, let cookieValue, _):
            limiter.succeeded(attempt)
            events.record(AuditRecord(type: .login, requestID: request.requestID, clientIP: request.clientIP, method: "password",
                                      user: user.username, authMethod: "password"))
            var headers: [(name: String, value: String)] = [
                ("Set-Cookie", "\(ActAsCookies.session)=\(cookieValue); Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=\(Int(settings.sessionTTL))"),
                ("Set-Cookie", "\(ActAsCookies.login)=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
            ]
            // This browser now has its own sign-in budget for this account (see LoginRateLimiter).
            if device == nil, let keys, let value = DeviceCookie.issue(username: user.username, keys: keys) {
                headers.append(("Set-Cookie", "\(DeviceCookie.name)=\(value); Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=\(DeviceCookie.maxAge)"))
            }
            return .redirect(303, to: rd, headers: headers)
        case .invalidCredentials(let user):
            limiter.failed(attempt, now: max(request.now, Date()))
            events.record(AuditRecord(type: .loginFailed, requestID: request.requestID, clientIP: request.clientIP,
                                      reason: user == nil ? "unknown_user" : "invalid_credentials", target: username, authMethod: "password"))
            return loginPage(request, error: "The username or password is not right.", status: 401, username: username)
        case .notAllowed(let user):
            limiter.failed(attempt, now: max(request.now, Date()))
            events.record(AuditRecord(type: .loginFailed, requestID: request.requestID, clientIP: request.clientIP,
                                      reason: "status_\(user.status.rawValue)", target: user.username, authMethod: "password"))
            return loginPage(request, error: "This account is \(user.status.rawValue) and cannot sign in. Ask an administrator.",
                             status: 403, username: username)
        }
    }

    func logout(_ request: ConsoleRequest) async throws -> ConsoleResponse {
        let clear: [(name: String, value: String)] = [("Set-Cookie", "\(ActAsCookies.session)=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")]
        guard let principal = request.principal, let session = principal.session else {
            if request.principal != nil {
                return problem(request, status: 400, code: "not_a_session", message: "API tokens do not sign in, so they cannot sign out.")
            }
            return .redirect(303, to: Self.afterSignOut(request), headers: clear)
        }
        guard csrfValid(request, session: session) else { return csrfRefused(request) }
        // SPEC §7: only signing out of the sign-in that started it ends it.
        if let open = live.read({ $0.openImpersonation(actorID: principal.user.id, signIn: session.idHash) }) {
            _ = try await impersonations.endAndPersist(open.id, reason: .actorSignedOut, context: context(request))
        }
        // SPEC §10.3: an OIDC sign-in also ends at the provider, when it has a sign-out page.
        let providerSignOut = await providerSignOutURL(request, sessionHash: session.idHash)
        try await directory.signOut(sessionHash: session.idHash)
        events.record(AuditRecord(type: .logout, requestID: request.requestID, clientIP: request.clientIP, user: principal.user.username))
        return .redirect(303, to: providerSignOut ?? Self.afterSignOut(request), headers: clear)
    }

    // MARK: pages

    func jwks() -> ConsoleResponse {
        guard let ring = live.keyRing else {
            return ConsoleResponse(status: 503, headers: [("Content-Type", "application/json")], body: Array("{\"error\":\"no_keys\",\"message\":\"No signing key yet.\"}\n".utf8))
        }
        return ConsoleResponse(status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "public, max-age=60")], body: ring.jwksJSON)
    }

    // MARK: checks

    /// SPEC §4: state changes by cookie need the CSRF token and a same-origin request.
    func csrfValid(_ request: ConsoleRequest, session: SignInSession) -> Bool {
        guard sameOrigin(request) else { return false }
        let sent = request.header("x-csrf-token") ?? request.formValue("csrf_token") ?? (request.jsonBody?["csrf_token"] as? String) ?? ""
        return constantTimeEquals(Array(sent.utf8), Array(session.csrfToken.utf8))
    }

    /// `Origin` equal to this origin, or — when there is no `Origin`, or it is `null` as
    /// browsers send under `Referrer-Policy: no-referrer` — `Sec-Fetch-Site: same-origin`.
    func sameOrigin(_ request: ConsoleRequest) -> Bool {
        if let origin = request.header("origin"), origin != "null" {
            guard let host = request.header("host")?.lowercased() else { return false }
            let origin = origin.lowercased()
            // `https://host:443` and `https://host` are the same origin.
            return origin == "https://\(host)" || origin == "https://\(host):443" || "\(origin):443" == "https://\(host)"
        }
        return request.header("sec-fetch-site")?.lowercased() == "same-origin"
    }

    /// The sign-in form's own rule (SPEC §4: it "carries its own CSRF token"). Browsers send
    /// `Origin` or `Sec-Fetch-Site` with every form POST, so a browser's request must show it is
    /// same-origin, exactly as for cookie-authenticated changes. A client that sends neither is a
    /// script (curl, an HTTP library), not a browser a third-party page could drive: it signs in
    /// with the form's token and its `__Host-`, `SameSite=Strict` cookie alone, which no other
    /// site can read or set.
    func signInOriginAllowed(_ request: ConsoleRequest) -> Bool {
        if request.header("origin") == nil && request.header("sec-fetch-site") == nil { return true }
        return sameOrigin(request)
    }

    func csrfRefused(_ request: ConsoleRequest) -> ConsoleResponse {
        problem(request, status: 403, code: "csrf", message: "The request lacked a valid CSRF token or came from another site. Reload the page and try again.")
    }

    func signInRequired(_ request: ConsoleRequest) -> ConsoleResponse {
        if request.wantsHTML, !request.path.hasPrefix("/.actas/api/") {
            let target = request.query.isEmpty ? request.path : request.path + "?" + request.query
            return .redirect(302, to: "/.actas/login?rd=\(FormCoding.encode(target))")
        }
        return .json(401, ErrorJSON(error: "unauthenticated", message: "Sign in first, or send an API token (Authorization: Bearer actas_…)."))
    }

    func methodNotAllowed(_ request: ConsoleRequest, allow: String) -> ConsoleResponse {
        var response = problem(request, status: 405, code: "method_not_allowed", message: "\(request.method) is not allowed on \(request.path).")
        response.headers.append(("Allow", allow))
        return response
    }

    /// An error in the form the asker understands: JSON for the API and scripts, a page for people.
    func problem(_ request: ConsoleRequest, status: Int, code: String, message: String) -> ConsoleResponse {
        if request.path.hasPrefix("/.actas/api/") || !request.wantsHTML {
            return .json(status, ErrorJSON(error: code, message: message))
        }
        let context: [String: Any] = [
            "heading": Self.heading(status), "message": message, "requestID": request.requestID,
            "back": request.principal == nil ? "/.actas/login" : "/.actas/", "backLabel": request.principal == nil ? "Sign in" : "Back to my account",
        ]
        return .html(status, Templates.page(title: Self.heading(status), "message", context, signedIn: request.principal.map(signedInContext)))
    }

    // MARK: helpers

    func signedInContext(_ principal: LiveState.Principal) -> [String: Any] {
        var context: [String: Any] = ["username": principal.user.username, "csrf": principal.session?.csrfToken ?? ""]
        if impersonations.policy.roles.mayImpersonate(principal.user.role) { context["impersonator"] = true }
        return context
    }

    func context(_ request: ConsoleRequest) -> EventContext {
        EventContext(requestID: request.requestID, clientIP: request.clientIP)
    }

    static func userContext(_ user: User) -> [String: Any] {
        [
            "id": user.id, "username": user.username, "email": user.email, "name": user.name, "displayName": user.displayName,
            "role": user.role, "groups": user.groups, "orgUnit": user.orgUnit, "status": user.status.rawValue,
        ]
    }

    static func heading(_ status: Int) -> String {
        switch status {
        case 400: return "That did not work"
        case 401: return "Sign in required"
        case 403: return "Not allowed"
        case 404: return "Not found"
        case 405: return "Not allowed here"
        case 429: return "Too many attempts"
        case 503: return "Temporarily unavailable"
        default: return "Something went wrong"
        }
    }

    static func describe(seconds: Int) -> String {
        seconds < 90 ? "\(seconds) seconds" : "\((seconds + 59) / 60) minutes"
    }

    /// RFC 3339, UTC, whole seconds.
    public static func timestamp(_ date: Date) -> String {
        RFC3339.string(from: date)
    }
}
