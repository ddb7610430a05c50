import ActAsCore
import ActAsStore
import Foundation
import PostgresNIO

/// Users found by `(issuer, sub)` and OIDC sign-ins (SPEC §10.3, migration 8), as `SQLiteStore+OIDC`.
extension PostgresStore {
    static let oidcMigration = OIDCSchema.statements(dateType: "DOUBLE PRECISION")

    public func oidcUserID(issuer: String, subject: String) async throws -> String? {
        try await query("SELECT user_id FROM oidc_identities WHERE issuer = \(issuer) AND subject = \(subject)").first?.string("user_id")
    }

    public func users(email: String) async throws -> [User] {
        guard !email.isEmpty else { return [] }
        return try await query("SELECT * FROM users WHERE lower(email) = lower(\(email)) ORDER BY username").map(Self.user)
    }

    public func recordOIDCSignIn(_ record: OIDCSignInRecord, user: User, session: SignInSession, at: Date) async throws -> User {
        let groups = Self.encodeGroups(user.groups)
        let time = at.timeIntervalSince1970
        return try await write { tx in
            try await tx.run("""
                INSERT INTO users (id, username, email, name, role, groups_json, org_unit, status, created_at, updated_at)
                VALUES (\(user.id), \(user.username), \(user.email), \(user.name), \(user.role), \(groups), \(user.orgUnit), 'active', \(time), \(time))
                ON CONFLICT (id) DO NOTHING
                """)
            // The claims' fields, a rename included, in the same transaction as the sign-in.
            let rows = try await tx.run("""
                UPDATE users SET last_login = \(time), updated_at = \(time),
                    status = CASE status WHEN 'invited' THEN 'active' ELSE status END,
                    username = \(user.username), email = \(user.email), name = \(user.name), role = \(user.role),
                    groups_json = \(groups), org_unit = \(user.orgUnit)
                WHERE id = \(session.userID) AND status IN ('active', 'invited') RETURNING *
                """)
            guard let row = rows.first else { throw StoreError.notFound("user \(session.userID) may not sign in") }
            let linked = try await tx.run(
                "SELECT user_id FROM oidc_identities WHERE issuer = \(record.issuer) AND subject = \(record.subject)").first?.string("user_id")
            if let linked, linked != session.userID {
                throw StoreError.conflict("\(record.issuer) subject \(record.subject) is linked to another user")
            }
            if linked == nil {
                // A verified email must not hand an account that is another subject's to this one.
                let other = try await tx.run("""
                    SELECT subject FROM oidc_identities
                    WHERE issuer = \(record.issuer) AND user_id = \(session.userID) AND subject <> \(record.subject)
                    """)
                if !other.isEmpty {
                    throw StoreError.conflict("user \(session.userID) is linked to another \(record.issuer) subject")
                }
                try await tx.run("""
                    INSERT INTO oidc_identities (issuer, subject, user_id, created_at)
                    VALUES (\(record.issuer), \(record.subject), \(session.userID), \(at.timeIntervalSince1970))
                    """)
            }
            try await tx.run("""
                INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, client_ip)
                VALUES (\(session.idHash), \(session.userID), \(session.csrfToken), \(session.createdAt.timeIntervalSince1970),
                        \(session.expiresAt.timeIntervalSince1970), \(session.clientIP))
                """)
            try await tx.run("""
                INSERT INTO oidc_sign_ins (session_hash, issuer, subject, provider_session, id_token)
                VALUES (\(session.idHash), \(record.issuer), \(record.subject), \(record.providerSessionID), \(record.idToken))
                """)
            try await tx.changed(.user, session.userID)
            try await tx.changed(.session, session.idHash)
            return Self.user(row)
        }
    }

    public func oidcSignIn(sessionHash: String) async throws -> OIDCSignInRecord? {
        try await query("SELECT * FROM oidc_sign_ins WHERE session_hash = \(sessionHash)").first.map(Self.oidcSignIn)
    }

    public func oidcSignIns(issuer: String, providerSessionID: String?, subject: String?) async throws -> [OIDCSignInRecord] {
        // NULL parameters mean "any" (one statement, still fully parameterised).
        try await query("""
            SELECT * FROM oidc_sign_ins WHERE issuer = \(issuer)
                AND (\(providerSessionID)::TEXT IS NULL OR provider_session = \(providerSessionID))
                AND (\(subject)::TEXT IS NULL OR subject = \(subject))
            """).map(Self.oidcSignIn)
    }

    public func oidcIdentities() async throws -> [OIDCIdentityLink] {
        try await query("SELECT * FROM oidc_identities ORDER BY issuer, subject").map { row in
            OIDCIdentityLink(issuer: row.string("issuer") ?? "", subject: row.string("subject") ?? "",
                             userID: row.string("user_id") ?? "", createdAt: row.date("created_at") ?? Self.epoch)
        }
    }

    public func saveOIDCIdentities(_ links: [OIDCIdentityLink]) async throws {
        try await write(feed: false) { tx in
            for link in links {
                try await tx.run("""
                    INSERT INTO oidc_identities (issuer, subject, user_id, created_at)
                    VALUES (\(link.issuer), \(link.subject), \(link.userID), \(link.createdAt.timeIntervalSince1970))
                    ON CONFLICT (issuer, subject) DO UPDATE SET user_id = EXCLUDED.user_id, created_at = EXCLUDED.created_at
                    """)
            }
        }
    }

    static func oidcSignIn(_ row: Row) -> OIDCSignInRecord {
        OIDCSignInRecord(
            sessionHash: row.string("session_hash") ?? "", issuer: row.string("issuer") ?? "", subject: row.string("subject") ?? "",
            providerSessionID: row.string("provider_session") ?? "", idToken: row.string("id_token") ?? "")
    }
}
