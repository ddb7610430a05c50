import ActAsCore
import Foundation

/// A sign-in session that came through the identity provider (SPEC §10.3): which provider
/// session and subject it belongs to (for back-channel logout) and the ID token (only ever
/// sent back to the provider as `id_token_hint`). Kept in the store, never in a cookie.
public struct OIDCSignInRecord: Sendable, Equatable {
    /// The sign-in session's id hash.
    public var sessionHash: String
    public var issuer: String
    public var subject: String
    /// The provider's `sid`; "" when it sent none.
    public var providerSessionID: String
    public var idToken: String

    public init(sessionHash: String, issuer: String, subject: String, providerSessionID: String, idToken: String) {
        self.sessionHash = sessionHash
        self.issuer = issuer
        self.subject = subject
        self.providerSessionID = providerSessionID
        self.idToken = idToken
    }
}

/// The link from a provider's `(issuer, sub)` to a user.
public struct OIDCIdentityLink: Sendable, Equatable {
    public var issuer: String
    public var subject: String
    public var userID: String
    public var createdAt: Date

    public init(issuer: String, subject: String, userID: String, createdAt: Date) {
        self.issuer = issuer
        self.subject = subject
        self.userID = userID
        self.createdAt = createdAt
    }
}

/// Migration 8's tables, the same in SQLite and PostgreSQL but for the date type.
public enum OIDCSchema {
    public static func statements(dateType: String) -> [String] {
        [
            """
            CREATE TABLE oidc_identities (
                issuer TEXT NOT NULL,
                subject TEXT NOT NULL,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                created_at \(dateType) NOT NULL,
                PRIMARY KEY (issuer, subject))
            """,
            "CREATE INDEX oidc_identities_by_user ON oidc_identities(user_id)",
            """
            CREATE TABLE oidc_sign_ins (
                session_hash TEXT PRIMARY KEY REFERENCES sessions(id_hash) ON DELETE CASCADE,
                issuer TEXT NOT NULL,
                subject TEXT NOT NULL,
                provider_session TEXT NOT NULL DEFAULT '',
                id_token TEXT NOT NULL)
            """,
            "CREATE INDEX oidc_sign_ins_by_provider_session ON oidc_sign_ins(issuer, provider_session)",
            "CREATE INDEX oidc_sign_ins_by_subject ON oidc_sign_ins(issuer, subject)",
        ]
    }
}
