import ActAsCore
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
        guard let started = try await startSession(for: user, clientIP: clientIP, ttl: ttl, now: now) else {
            return .notAllowed(user: user)  // suspended or deleted between the check and the write
        }
        return .signedIn(user: started.user, cookieValue: started.cookieValue, session: started.session)
    }
}
