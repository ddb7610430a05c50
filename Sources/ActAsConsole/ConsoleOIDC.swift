import ActAsAudit
import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsIdentity
import ActAsPages
import ActAsSessions
import ActAsStore
import Foundation

/// Sign-in through the identity provider (SPEC §10.3): `GET /.actas/oidc/start`,
/// `GET /.actas/oidc/callback`, `POST /.actas/oidc/backchannel-logout`, and the provider's
/// sign-out page after `POST /.actas/logout`.
extension Console {
    public static let oidcStartPath = "/.actas/oidc/start"
    public static let oidcCallbackPath = "/.actas/oidc/callback"
    public static let backchannelLogoutPath = "/.actas/oidc/backchannel-logout"

    /// From `[auth.oidc]` at start and at each SIGHUP (`prepareOIDCReload`); nil when `"oidc"`
    /// is not in `auth.methods`.
    public var oidc: OIDCProvider? { oidcProvider.withLock { $0 } }

    public func use(oidc provider: OIDCProvider?) {
        oidcProvider.withLock { $0 = provider }
    }

    /// `[auth.oidc]` at start: the provider client, when `"oidc"` is in `auth.methods`.
    /// Throws when `ca_file` or `SSL_CERT_FILE` holds no readable PEM certificates.
    public func configureOIDC(_ config: ActAsConfig) throws {
        guard let settings = config.auth.oidc else { return }
        use(oidc: try OIDCProvider(settings: settings, roleOrder: config.roles.order))
    }

    /// A reload's provider client, built before anything of the reload is applied.
    public struct PreparedOIDC: Sendable {
        let provider: OIDCProvider?
        let changed: Bool
    }

    /// SIGHUP, first step: the provider client for the new `[auth.oidc]`. Throws (and changes
    /// nothing) when its roots cannot be loaded; unchanged settings keep the running client
    /// and its cached discovery and keys.
    public func prepareOIDCReload(_ config: ActAsConfig) throws -> PreparedOIDC {
        let running = oidc
        let unchanged = running.map { $0.settings == config.auth.oidc && $0.mapping.roleOrder == config.roles.order }
            ?? (config.auth.oidc == nil)
        if unchanged { return PreparedOIDC(provider: running, changed: false) }
        do {
            let provider = try config.auth.oidc.map { try OIDCProvider(settings: $0, roleOrder: config.roles.order) }
            return PreparedOIDC(provider: provider, changed: true)
        } catch {
            throw OIDCRootsError(caFile: config.auth.oidc?.caFile, underlying: "\(error)")
        }
    }

    /// SIGHUP, last step: uses the prepared client when the rest of the reload was applied, else
    /// drops it. The client no longer used is shut down once calls under way are past their
    /// deadline (sign-ins in flight finish with the settings they started with).
    public func finishOIDCReload(_ prepared: PreparedOIDC, applied: Bool) {
        guard prepared.changed else { return }
        let unused = applied ? oidcProvider.withLock { running in
            defer { running = prepared.provider }
            return running
        } : prepared.provider
        guard let unused else { return }
        Task {
            try? await Task.sleep(for: OIDCProvider.retirement)
            await unused.shutdown()
        }
    }

    public struct OIDCRootsError: Error, CustomStringConvertible {
        public let caFile: String?
        public let underlying: String
        public var description: String {
            "auth.oidc: cannot load the provider's trusted roots (ca_file \(caFile ?? "unset") or SSL_CERT_FILE): \(underlying)"
        }
    }

    /// The console's OIDC routes, or nil when the path is not one of them.
    func routeOIDC(_ request: ConsoleRequest, method: String) async throws -> ConsoleResponse? {
        switch (method, request.path) {
        case ("GET", Self.oidcStartPath): return await oidcStart(request)
        case ("GET", Self.oidcCallbackPath): return try await oidcCallback(request)
        case ("POST", Self.backchannelLogoutPath): return try await backchannelLogout(request)
        case (_, Self.oidcStartPath), (_, Self.oidcCallbackPath): return methodNotAllowed(request, allow: "GET, HEAD")
        case (_, Self.backchannelLogoutPath): return methodNotAllowed(request, allow: "POST")
        default: return nil
        }
    }

    /// What the login page says on its OIDC button: the provider's host name.
    var oidcButtonLabel: String? {
        guard let oidc else { return nil }
        return URL(string: oidc.settings.issuer)?.host ?? "your identity provider"
    }

    static func origin(_ request: ConsoleRequest) -> String {
        "https://\(request.header("host") ?? "localhost")"
    }

    static func flowCookie(_ value: String, maxAge: Int) -> (name: String, value: String) {
        ("Set-Cookie", "\(SignInFlow.cookieName)=\(value); Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=\(maxAge)")
    }

    // MARK: start

    func oidcStart(_ request: ConsoleRequest) async -> ConsoleResponse {
        guard let oidc else {
            return problem(request, status: 404, code: "not_found", message: "Sign-in with an identity provider is not enabled here.")
        }
        guard let keys = live.keyRing else {
            return problem(request, status: 503, code: "store_unavailable", message: "ActAs has no signing key yet. Try again in a moment.")
        }
        let flow = SignInFlow.start(returnPath: ReturnPath.sanitise(request.queryValue("rd")), now: request.now)
        let redirectURI = Self.origin(request) + Self.oidcCallbackPath
        switch await oidc.authorizationURL(flow: flow, redirectURI: redirectURI) {
        case .failure(let failure):
            return oidcRefused(request, failure)
        case .success(let url):
            guard let cookie = flow.cookieValue(keys: keys) else {
                return problem(request, status: 503, code: "store_unavailable", message: "ActAs has no signing key yet. Try again in a moment.")
            }
            return .redirect(302, to: url, headers: [Self.flowCookie(cookie, maxAge: Int(SignInFlow.lifetime))])
        }
    }

    // MARK: callback

    func oidcCallback(_ request: ConsoleRequest) async throws -> ConsoleResponse {
        guard let oidc else {
            return problem(request, status: 404, code: "not_found", message: "Sign-in with an identity provider is not enabled here.")
        }
        // The cookie is one use: whatever happens next, the browser drops it.
        let clear = Self.flowCookie("", maxAge: 0)
        guard let keys = live.keyRing, let value = request.cookie(SignInFlow.cookieName),
              let flow = SignInFlow.parse(cookie: value, keys: keys) else {
            return oidcRefused(request, .state("no valid \(SignInFlow.cookieName) cookie"), clear: clear)
        }
        guard !flow.expired(now: request.now) else { return oidcRefused(request, .state("sign-in started over 10 minutes ago"), clear: clear) }
        let state = request.queryValue("state") ?? ""
        guard constantTimeEquals(Array(state.utf8), Array(flow.state.utf8)) else {
            return oidcRefused(request, .state("state does not match this browser's sign-in"), clear: clear)
        }
        // One use on every instance sharing the store, before the code goes anywhere.
        guard try await directory.store.claimOnce(.signInFlow, key: flow.oneUseKey, until: flow.usableUntil, now: request.now) else {
            return oidcRefused(request, .state("this sign-in was already completed"), clear: clear)
        }
        if let error = request.queryValue("error") {
            return oidcRefused(request, .token("the provider answered error=\(error.prefix(64))"), clear: clear)
        }
        guard let code = request.queryValue("code"), !code.isEmpty else {
            return oidcRefused(request, .token("no code in the callback"), clear: clear)
        }
        let redirectURI = Self.origin(request) + Self.oidcCallbackPath
        let signedIn: OIDCProvider.SignedIn
        switch await oidc.finish(code: code, flow: flow, redirectURI: redirectURI, now: request.now) {
        case .failure(let failure): return oidcRefused(request, failure, clear: clear)
        case .success(let result): signedIn = result
        }
        let identity = signedIn.identity
        let claims = identity
        switch try await directory.signIn(oidc: claims, idToken: signedIn.idToken, clientIP: request.clientIP,
                                          ttl: settings.sessionTTL, now: request.now) {
        case .signedIn(let user, let cookieValue, _, _):
            events.record(AuditRecord(type: .login, requestID: request.requestID, clientIP: request.clientIP, method: "oidc",
                                      user: user.username, authMethod: "oidc"))
            return .redirect(303, to: flow.returnPath, headers: [
                ("Set-Cookie", "\(ActAsCookies.session)=\(cookieValue); Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=\(Int(settings.sessionTTL))"),
                clear,
            ])
        case .notAllowed(let user):
            return oidcRefused(request, .suspended, clear: clear, username: user.username)
        case .conflict(let why):
            return oidcRefused(request, .conflict(why), clear: clear, username: claims.username)
        case .invalidClaims(let why):
            return oidcRefused(request, .idToken(why), clear: clear, username: claims.username)
        }
    }

    /// A refused OIDC sign-in: a `login_failed` event with the code, then the login page with
    /// the status for browsers, JSON for others.
    func oidcRefused(_ request: ConsoleRequest, _ failure: OIDCFailure, clear: (name: String, value: String)? = nil, username: String? = nil) -> ConsoleResponse {
        events.record(AuditRecord(type: .loginFailed, requestID: request.requestID, clientIP: request.clientIP, method: "oidc",
                                  reason: failure.code, target: username, authMethod: "oidc", detail: failure.detail))
        let headers = clear.map { [$0] } ?? []
        if request.wantsHTML {
            return loginPage(request, error: failure.message, status: failure.status, extraHeaders: headers)
        }
        return .json(failure.status, ErrorJSON(error: failure.code, message: failure.message), headers: headers)
    }

    // MARK: sign-out

    /// Every console page may hold a sign-out form, and the browser follows its answer's
    /// redirect to the provider only when CSP `form-action` allows that origin.
    func allowingProviderSignOut(_ response: ConsoleResponse) -> ConsoleResponse {
        guard let oidc else { return response }
        let origins = oidc.signOutOrigins.joined(separator: " ")
        guard !origins.isEmpty else { return response }
        var response = response
        for index in response.headers.indices where response.headers[index].name.lowercased() == "content-security-policy" {
            response.headers[index].value = response.headers[index].value
                .replacingOccurrences(of: "form-action 'self'", with: "form-action 'self' \(origins)")
        }
        return response
    }

    /// The provider's sign-out page for this sign-in session, when it came through OIDC and the
    /// provider has one (read before the session, and so its record, is deleted).
    func providerSignOutURL(_ request: ConsoleRequest, sessionHash: String) async -> String? {
        guard let oidc, let record = try? await directory.store.oidcSignIn(sessionHash: sessionHash) else { return nil }
        return await oidc.endSessionURL(idToken: record.idToken, postLogoutRedirect: Self.origin(request) + "/.actas/login")
    }

    // MARK: back-channel logout

    func backchannelLogout(_ request: ConsoleRequest) async throws -> ConsoleResponse {
        guard let oidc else {
            return .json(404, ErrorJSON(error: "not_found", message: "Sign-in with an identity provider is not enabled here."))
        }
        let noStore: [(name: String, value: String)] = [("Cache-Control", "no-store")]
        guard let token = request.formValue("logout_token"), !token.isEmpty else {
            return .json(400, ErrorJSON(error: "invalid_logout_token", message: "The form field logout_token is missing."), headers: noStore)
        }
        let verified: VerifiedLogoutToken
        switch await oidc.verifyLogoutToken(token, now: request.now) {
        case .failure(let failure):
            events.record(AuditRecord(type: .requestDenied, requestID: request.requestID, clientIP: request.clientIP,
                                      reason: "invalid_logout_token", detail: failure.description))
            // What exactly failed goes to the log only: the caller needs no oracle.
            return .json(400, ErrorJSON(error: "invalid_logout_token", message: "The logout token is not valid."), headers: noStore)
        case .success(let token):
            verified = token
        }
        // One use on every instance sharing the store.
        guard try await directory.store.claimOnce(.logoutToken, key: verified.replayKey, until: verified.keepUntil, now: request.now) else {
            events.record(AuditRecord(type: .requestDenied, requestID: request.requestID, clientIP: request.clientIP,
                                      reason: "invalid_logout_token", detail: "its jti was already used"))
            return .json(400, ErrorJSON(error: "invalid_logout_token", message: "The logout token is not valid."), headers: noStore)
        }
        let claims = verified.claims
        let sid = claims.string("sid").flatMap { $0.isEmpty ? nil : $0 }
        let sub = claims.string("sub").flatMap { $0.isEmpty ? nil : $0 }
        let records = try await directory.store.oidcSignIns(issuer: oidc.settings.issuer, providerSessionID: sid, subject: sub)
        for record in records {
            let session = live.read { $0.sessions[record.sessionHash] }
            let user = session.flatMap { session in live.read { $0.users[session.userID] } }
            // SPEC §7: ending a sign-in ends the impersonation it runs.
            if let user, let open = live.read({ $0.openImpersonation(actorID: user.id, signIn: record.sessionHash) }) {
                _ = try await impersonations.endAndPersist(open.id, reason: .actorSignedOut, context: context(request))
            }
            try await directory.signOut(sessionHash: record.sessionHash)
            events.record(AuditRecord(type: .logout, requestID: request.requestID, clientIP: request.clientIP, user: user?.username,
                                      reason: "backchannel", authMethod: "oidc", extra: [AuditField("backchannel", .bool(true))]))
        }
        return .json(200, BackchannelLogoutJSON(ended: records.count), headers: noStore)
    }
}

/// `POST /.actas/oidc/backchannel-logout`'s answer: how many sign-in sessions it ended.
struct BackchannelLogoutJSON: Encodable, Equatable {
    var ended: Int
}
