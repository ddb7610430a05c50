import ActAsCore
import ActAsCrypto
import Foundation

extension Directory {
    public enum OIDCSignInResult: Sendable {
        case signedIn(user: User, cookieValue: String, session: SignInSession, created: Bool)
        /// Suspended or deleted: no sign-in by any method.
        case notAllowed(user: User)
        /// The username or email belongs to another user and no verified email links them.
        case conflict(String)
        /// The claims cannot make a valid user (e.g. a username with spaces).
        case invalidClaims(String)
    }

    /// Who the claims are, by SPEC §10.3's order: the `(issuer, sub)` link, else one user with
    /// the same verified email, else nobody (a new user). Pure apart from the reads.
    public func findOIDCUser(_ claims: OIDCClaims) async throws -> Result<User?, OIDCSignInResultError> {
        if let id = try await store.oidcUserID(issuer: claims.issuer, subject: claims.subject), let user = try await store.user(id: id) {
            return .success(user)
        }
        guard claims.emailVerified, !claims.email.isEmpty else { return .success(nil) }
        let sameEmail = try await store.users(email: claims.email)
        if sameEmail.count > 1 { return .failure(.conflict("several users have the email \(claims.email)")) }
        return .success(sameEmail.first)
    }

    public enum OIDCSignInResultError: Error, Sendable, Equatable { case conflict(String) }

    /// The user as the claims say it is now (every sign-in updates these fields).
    public static func applying(_ claims: OIDCClaims, to existing: User?, newID: String, now: Date) -> User {
        var user = existing ?? User(id: newID, username: claims.username, role: claims.role, status: .active, createdAt: now, updatedAt: now)
        user.username = claims.username
        if !claims.email.isEmpty { user.email = claims.email }
        if !claims.name.isEmpty { user.name = claims.name }
        user.role = claims.role
        user.groups = claims.groups
        user.orgUnit = claims.orgUnit
        return user
    }

    public func signIn(oidc claims: OIDCClaims, idToken: String, clientIP: String, ttl: TimeInterval, now: Date = Date()) async throws -> OIDCSignInResult {
        var found: User?
        switch try await findOIDCUser(claims) {
        case .failure(.conflict(let why)): return .conflict(why)
        case .success(let user): found = user
        }
        let result = try await signIn(oidc: claims, as: found, idToken: idToken, clientIP: clientIP, ttl: ttl, now: now)
        // Two first sign-ins of one new user at once: the one that lost the race to create the
        // user finds it linked to this subject now, and signs in to it.
        guard found == nil, case .conflict = result,
              try await store.oidcUserID(issuer: claims.issuer, subject: claims.subject) != nil else { return result }
        switch try await findOIDCUser(claims) {
        case .failure(.conflict(let why)): return .conflict(why)
        case .success(let user): found = user
        }
        return try await signIn(oidc: claims, as: found, idToken: idToken, clientIP: clientIP, ttl: ttl, now: now)
    }

    /// One sign-in attempt as `found` (nil: a new user).
    private func signIn(oidc claims: OIDCClaims, as found: User?, idToken: String, clientIP: String, ttl: TimeInterval,
                        now: Date) async throws -> OIDCSignInResult {
        if let found, !found.status.maySignIn { return .notAllowed(user: found) }
        // Another user with this username (or, for a new user, this email) is someone else
        // until a verified email says otherwise.
        if let holder = try await store.user(username: claims.username), holder.id != found?.id {
            return .conflict("the username \(claims.username) belongs to another user")
        }
        if found == nil, !claims.email.isEmpty, !(try await store.users(email: claims.email)).isEmpty {
            return .conflict("the email \(claims.email) belongs to another user")
        }
        let user = Self.applying(claims, to: found, newID: Secrets.identifier(prefix: "usr_"), now: now)
        let problems = UserValidation.problems(user, knownRoles: knownRoles)
        if !problems.isEmpty { return .invalidClaims(problems.joined(separator: "; ")) }
        let (cookieValue, session) = Self.newSession(userID: user.id, clientIP: clientIP, ttl: ttl, now: now)
        let record = OIDCSignInRecord(sessionHash: session.idHash, issuer: claims.issuer, subject: claims.subject,
                                      providerSessionID: claims.providerSessionID, idToken: idToken)
        let updated: User
        do {
            updated = try await store.recordOIDCSignIn(record, user: user, session: session, at: now)
        } catch StoreError.notFound {
            return .notAllowed(user: user)  // suspended between the check and the write
        } catch StoreError.conflict(let why) {
            return .conflict(why)
        }
        applySignedIn(updated, session)
        return .signedIn(user: updated, cookieValue: cookieValue, session: session, created: found == nil)
    }
}
