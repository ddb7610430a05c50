import ActAsCore
import ActAsCrypto
import Foundation

extension Directory {
    public enum CertificateSignInResult: Sendable {
        case signedIn(user: User, cookieValue: String, session: SignInSession)
        /// No user by that name: certificates sign people in, they do not create them.
        case unknownUser
        /// Suspended or deleted (SPEC §10.3: no sign-in by any method).
        case notAllowed(user: User)
    }

    /// SPEC §10.3 mTLS: the user a verified client certificate names gets a sign-in session,
    /// written the way a password sign-in writes it (`last_login`, invited → active).
    public func signIn(certificateUsername username: String, clientIP: String, ttl: TimeInterval, now: Date = Date()) async throws -> CertificateSignInResult {
        guard let user = try await store.user(username: username) else { return .unknownUser }
        guard user.status.maySignIn else { return .notAllowed(user: user) }
        let cookieValue = Secrets.sessionToken()
        let session = SignInSession(
            idHash: Secrets.hash(cookieValue), userID: user.id, csrfToken: Secrets.csrfToken(),
            createdAt: now, expiresAt: now.addingTimeInterval(ttl), clientIP: clientIP)
        let updated: User
        do {
            updated = try await store.recordSignIn(userID: user.id, at: now, session: session)
        } catch StoreError.notFound {
            return .notAllowed(user: user)  // suspended or deleted between the check and the write
        }
        live?.apply(userID: updated.id, user: updated)
        live?.apply(sessionHash: session.idHash, session: session)
        return .signedIn(user: updated, cookieValue: cookieValue, session: session)
    }
}
