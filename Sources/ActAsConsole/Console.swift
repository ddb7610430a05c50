import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsStore
import Foundation

/// Names of the proxy's own cookies. Everything starting with `__Host-actas` belongs to
/// ActAs and never reaches the application.
public enum ActAsCookies {
    public static let session = "__Host-actas_session"
    public static let login = "__Host-actas_login"
    public static let prefix = "__Host-actas"
}

/// What the console needs from the configuration, computed once per (re)load.
public struct ConsoleSettings: Sendable {
    public var sessionTTL: TimeInterval
    public var passwordEnabled: Bool
    public var tokensEnabled: Bool

    public init(config: ActAsConfig) {
        sessionTTL = config.auth.sessionTTL.seconds
        passwordEnabled = config.auth.passwordEnabled
        tokensEnabled = config.auth.tokensEnabled
    }
}

/// `/.actas/…`: sign-in, the account page, the JSON API, and the JWKS. Low volume, so
/// handlers are async and may read the store; everything the request path enforces is
/// applied to the live state before a handler returns.
public final class Console: Sendable {
    public let settings: ConsoleSettings
    public let directory: Directory
    public let live: LiveState
    public let events: any SecurityEventRecorder
    public let limiter: LoginRateLimiter

    public static let prefix = "/.actas/"
    public static let jwksPath = "/.well-known/actas/jwks.json"

    public init(config: ActAsConfig, directory: Directory, live: LiveState, events: any SecurityEventRecorder) {
        self.settings = ConsoleSettings(config: config)
        self.directory = directory
        self.live = live
        self.events = events
        self.limiter = LoginRateLimiter(
            maxPerAccount: config.auth.maxFailedLogins, maxPerAddress: config.auth.maxFailedLoginsPerIP,
            window: config.auth.failedLoginWindow.seconds)
    }

    /// Whether a request path is the console's rather than the application's.
    public static func owns(path: String) -> Bool {
        path == "/.actas" || path.hasPrefix(prefix) || path == jwksPath
    }

    public func handle(_ request: ConsoleRequest) async -> ConsoleResponse {
        do {
            return try await route(request)
        } catch let error as StoreError {
            return problem(request, status: 503, code: "store_unavailable",
                           message: "ActAs cannot reach its store right now (\(error)). Try again in a moment.")
        } catch {
            return problem(request, status: 500, code: "internal_error", message: "Something went wrong: \(error).")
        }
    }

    private func route(_ request: ConsoleRequest) async throws -> ConsoleResponse {
        switch request.path {
        case Self.jwksPath:
            guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(request, allow: "GET, HEAD") }
            return jwks()
        case "/.actas":
            return .redirect(308, to: Self.prefix)
        case "/.actas/console.css":
            return .asset("text/css; charset=utf-8", Templates.css)
        case "/.actas/login":
            switch request.method {
            case "GET", "HEAD": return loginPage(request)
            case "POST": return try await login(request)
            default: return methodNotAllowed(request, allow: "GET, HEAD, POST")
            }
        case "/.actas/logout":
            guard request.method == "POST" else { return methodNotAllowed(request, allow: "POST") }
            return try await logout(request)
        case "/.actas/":
            guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(request, allow: "GET, HEAD") }
            guard let principal = request.principal else { return signInRequired(request) }
            return account(request, principal)
        case "/.actas/api/v1/me":
            guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(request, allow: "GET, HEAD") }
            guard let principal = request.principal else { return signInRequired(request) }
            return .json(200, me(principal, now: request.now))
        default:
            return problem(request, status: 404, code: "not_found", message: "There is no console page at \(request.path).")
        }
    }

    // MARK: sign-in

    private func loginPage(_ request: ConsoleRequest, error: String? = nil, status: Int = 200, username: String = "", extraHeaders: [(name: String, value: String)] = []) -> ConsoleResponse {
        guard settings.passwordEnabled else {
            return problem(request, status: 404, code: "not_found", message: "Password sign-in is not enabled here.")
        }
        // Reuse a well-formed login cookie so two open sign-in tabs both keep working.
        let existing = request.cookie(ActAsCookies.login).flatMap { Base64URL.decode($0)?.count == 32 ? $0 : nil }
        let token = existing ?? Secrets.csrfToken()
        let rd = ReturnPath.sanitise(request.queryValue("rd") ?? request.formValue("rd"))
        var context: [String: Any] = ["csrf": token, "rd": rd, "username": username]
        if let error { context["error"] = error }
        var headers = extraHeaders
        if existing == nil {
            headers.append(("Set-Cookie", "\(ActAsCookies.login)=\(token); Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"))
        }
        return .html(status, Templates.page(title: "Sign in", "login", context), headers: headers)
    }

    private func login(_ request: ConsoleRequest) async throws -> ConsoleResponse {
        guard settings.passwordEnabled else {
            return problem(request, status: 404, code: "not_found", message: "Password sign-in is not enabled here.")
        }
        let field = request.formValue("csrf_token") ?? ""
        let cookie = request.cookie(ActAsCookies.login) ?? ""
        guard sameOrigin(request), !cookie.isEmpty, constantTimeEquals(Array(field.utf8), Array(cookie.utf8)) else {
            return problem(request, status: 403, code: "csrf",
                           message: "The sign-in form expired or came from another site. Reload the page and sign in again.")
        }
        let username = (request.formValue("username") ?? "").trimmingCharacters(in: .whitespaces)
        let password = request.formValue("password") ?? ""
        let rd = ReturnPath.sanitise(request.formValue("rd"))
        guard !username.isEmpty, !password.isEmpty else {
            return loginPage(request, error: "Enter your username and password.", status: 400, username: username)
        }
        if let wait = limiter.retryAfter(account: username, address: request.clientIP, now: request.now) {
            events.record(SecurityEvent(type: "login_failed", requestID: request.requestID, clientIP: request.clientIP,
                                        user: username, reason: "rate_limited"))
            return loginPage(request, error: "Too many failed sign-ins. Try again in \(Self.describe(seconds: wait)).",
                             status: 429, username: username, extraHeaders: [("Retry-After", "\(wait)")])
        }
        switch try await directory.signIn(username: username, password: password, clientIP: request.clientIP,
                                          ttl: settings.sessionTTL, now: request.now) {
        case .signedIn(let user, let cookieValue, _):
            limiter.recordSuccess(account: username)
            events.record(SecurityEvent(type: "login", requestID: request.requestID, clientIP: request.clientIP, user: user.username))
            return .redirect(303, to: rd, headers: [
                ("Set-Cookie", "\(ActAsCookies.session)=\(cookieValue); Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=\(Int(settings.sessionTTL))"),
                ("Set-Cookie", "\(ActAsCookies.login)=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
            ])
        case .invalidCredentials(let user):
            limiter.recordFailure(account: username, address: request.clientIP, now: request.now)
            events.record(SecurityEvent(type: "login_failed", requestID: request.requestID, clientIP: request.clientIP,
                                        user: user?.username ?? username, reason: user == nil ? "unknown_user" : "invalid_credentials"))
            return loginPage(request, error: "The username or password is not right.", status: 401, username: username)
        case .notAllowed(let user):
            limiter.recordFailure(account: username, address: request.clientIP, now: request.now)
            events.record(SecurityEvent(type: "login_failed", requestID: request.requestID, clientIP: request.clientIP,
                                        user: user.username, reason: "status_\(user.status.rawValue)"))
            return loginPage(request, error: "This account is \(user.status.rawValue) and cannot sign in. Ask an administrator.",
                             status: 403, username: username)
        }
    }

    private func logout(_ request: ConsoleRequest) async throws -> ConsoleResponse {
        let clear: [(name: String, value: String)] = [("Set-Cookie", "\(ActAsCookies.session)=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")]
        guard let principal = request.principal, let session = principal.session else {
            if request.principal != nil {
                return problem(request, status: 400, code: "not_a_session", message: "API tokens do not sign in, so they cannot sign out.")
            }
            return .redirect(303, to: "/.actas/login", headers: clear)
        }
        guard csrfValid(request, session: session) else { return csrfRefused(request) }
        try await directory.signOut(sessionHash: session.idHash)
        events.record(SecurityEvent(type: "logout", requestID: request.requestID, clientIP: request.clientIP, user: principal.user.username))
        return .redirect(303, to: "/.actas/login", headers: clear)
    }

    // MARK: pages

    private func account(_ request: ConsoleRequest, _ principal: LiveState.Principal) -> ConsoleResponse {
        let context: [String: Any] = [
            "user": Self.userContext(principal.user),
            "sessionExpires": principal.session.map { Self.timestamp($0.expiresAt) } ?? "",
        ]
        return .html(200, Templates.page(title: "My account", "account", context, signedIn: signedInContext(principal)))
    }

    private func jwks() -> ConsoleResponse {
        guard let ring = live.keyRing else {
            return ConsoleResponse(status: 503, headers: [("Content-Type", "application/json")], body: Array("{\"error\":\"no_keys\",\"message\":\"No signing key yet.\"}\n".utf8))
        }
        return ConsoleResponse(status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "public, max-age=60")], body: ring.jwksJSON)
    }

    // MARK: JSON

    func me(_ principal: LiveState.Principal, now: Date) -> [String: Any] {
        let user = principal.user
        let consent = live.read { $0.consents[user.id] }
        let active = consent?.isActive(at: now) ?? false
        return [
            "user": [
                "id": user.id, "username": user.username, "email": user.email, "name": user.name, "role": user.role,
                "groups": user.groups, "org_unit": user.orgUnit,
            ] as [String: Any],
            "impersonation": NSNull(),
            "consent": ["active": active, "expires_at": active ? Self.timestamp(consent!.expiresAt) : NSNull()] as [String: Any],
            "csrf_token": principal.session.map { $0.csrfToken as Any } ?? NSNull(),
        ]
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
            guard let host = request.header("host") else { return false }
            return origin.lowercased() == "https://\(host.lowercased())"
        }
        return request.header("sec-fetch-site")?.lowercased() == "same-origin"
    }

    private func csrfRefused(_ request: ConsoleRequest) -> ConsoleResponse {
        problem(request, status: 403, code: "csrf", message: "The request lacked a valid CSRF token or came from another site. Reload the page and try again.")
    }

    private func signInRequired(_ request: ConsoleRequest) -> ConsoleResponse {
        if request.wantsHTML, !request.path.hasPrefix("/.actas/api/") {
            return .redirect(302, to: "/.actas/login?rd=\(FormCoding.encode(request.path))")
        }
        return .json(401, ["error": "unauthenticated", "message": "Sign in first, or send an API token (Authorization: Bearer actas_…)."])
    }

    private func methodNotAllowed(_ request: ConsoleRequest, allow: String) -> ConsoleResponse {
        var response = problem(request, status: 405, code: "method_not_allowed", message: "\(request.method) is not allowed on \(request.path).")
        response.headers.append(("Allow", allow))
        return response
    }

    /// An error in the form the asker understands: JSON for the API and scripts, a page for people.
    func problem(_ request: ConsoleRequest, status: Int, code: String, message: String, extra: [String: Any] = [:]) -> ConsoleResponse {
        if request.path.hasPrefix("/.actas/api/") || !request.wantsHTML {
            var object: [String: Any] = ["error": code, "message": message]
            for (key, value) in extra { object[key] = value }
            return .json(status, object)
        }
        let context: [String: Any] = [
            "heading": Self.heading(status), "message": message, "requestID": request.requestID,
            "back": request.principal == nil ? "/.actas/login" : "/.actas/", "backLabel": request.principal == nil ? "Sign in" : "Back to my account",
        ]
        return .html(status, Templates.page(title: Self.heading(status), "message", context, signedIn: request.principal.map(signedInContext)))
    }

    // MARK: helpers

    func signedInContext(_ principal: LiveState.Principal) -> [String: Any] {
        ["username": principal.user.username, "csrf": principal.session?.csrfToken ?? ""]
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
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
