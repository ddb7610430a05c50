import Foundation

/// What may be used only once by every instance that shares the store (SPEC §10.3): an OIDC
/// sign-in flow (its `state`) and a back-channel logout token (its `jti`). A claim is kept
/// until the thing could not be accepted anyway, then deleted by the next claim.
public enum OneUseKind: String, Sendable, CaseIterable {
    case signInFlow = "oidc_flow"
    case logoutToken = "oidc_logout_token"
}

/// Migration 10's table, the same in SQLite and PostgreSQL but for the date type.
public enum OneUseSchema {
    public static func statements(dateType: String) -> [String] {
        [
            """
            CREATE TABLE one_use_claims (
                kind TEXT NOT NULL,
                key TEXT NOT NULL,
                expires_at \(dateType) NOT NULL,
                PRIMARY KEY (kind, key))
            """,
            "CREATE INDEX one_use_claims_by_expiry ON one_use_claims(expires_at)",
        ]
    }
}
