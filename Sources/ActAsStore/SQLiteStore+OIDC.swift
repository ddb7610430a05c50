import ActAsCore
import Foundation
import SQLiteNIO

/// Users found by `(issuer, sub)` and OIDC sign-ins (SPEC §10.3, migration 8).
extension SQLiteStore {
    public func oidcUserID(issuer: String, subject: String) async throws -> String? {
        try await query("SELECT user_id FROM oidc_identities WHERE issuer = ? AND subject = ?", [.text(issuer), .text(subject)])
            .first?.column("user_id")?.string
    }

    public func users(email: String) async throws -> [User] {
        guard !email.isEmpty else { return [] }
        return try await query("SELECT * FROM users WHERE lower(email) = lower(?) ORDER BY username", [.text(email)]).map(Self.user)
    }

    public func recordOIDCSignIn(_ record: OIDCSignInRecord, user: User, session: SignInSession, at: Date) async throws -> User {
        try await write { tx in
            let fields: [SQLiteData] = [
                .text(user.id), .float(at.timeIntervalSince1970), .text(user.username), .text(user.email), .text(user.name),
                .text(user.role), .text(Self.encodeGroups(user.groups)), .text(user.orgUnit),
            ]
            let exists = !(try await tx.run("SELECT id FROM users WHERE id = ?", [.text(user.id)]).isEmpty)
            if !exists {
                try await tx.run("""
                    INSERT INTO users (id, username, email, name, role, groups_json, org_unit, status, created_at, updated_at)
                    VALUES (?1, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?2, ?2)
                    """, fields)
            }
            // The claims' fields, a rename included, in the same transaction as the sign-in.
            let rows = try await tx.run("""
                UPDATE users SET last_login = ?2, status = CASE status WHEN 'invited' THEN 'active' ELSE status END, updated_at = ?2,
                    username = ?3, email = ?4, name = ?5, role = ?6, groups_json = ?7, org_unit = ?8
                WHERE id = ?1 AND status IN ('active', 'invited') RETURNING *
                """, fields)
            guard let row = rows.first else { throw StoreError.notFound("user \(session.userID) may not sign in") }
            let linked = try await tx.run("SELECT user_id FROM oidc_identities WHERE issuer = ? AND subject = ?",
                                          [.text(record.issuer), .text(record.subject)]).first?.column("user_id")?.string
            if let linked, linked != session.userID {
                throw StoreError.conflict("\(record.issuer) subject \(record.subject) is linked to another user")
            }
            if linked == nil {
                // A verified email must not hand an account that is another subject's to this one.
                let other = try await tx.run("SELECT subject FROM oidc_identities WHERE issuer = ? AND user_id = ? AND subject <> ?",
                                             [.text(record.issuer), .text(session.userID), .text(record.subject)])
                if !other.isEmpty {
                    throw StoreError.conflict("user \(session.userID) is linked to another \(record.issuer) subject")
                }
                try await tx.run("INSERT INTO oidc_identities (issuer, subject, user_id, created_at) VALUES (?, ?, ?, ?)", [
                    .text(record.issuer), .text(record.subject), .text(session.userID), .float(at.timeIntervalSince1970),
                ])
            }
            try await tx.run("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, client_ip) VALUES (?, ?, ?, ?, ?, ?)", [
                .text(session.idHash), .text(session.userID), .text(session.csrfToken), .float(session.createdAt.timeIntervalSince1970),
                .float(session.expiresAt.timeIntervalSince1970), .text(session.clientIP),
            ])
            try await tx.run("INSERT INTO oidc_sign_ins (session_hash, issuer, subject, provider_session, id_token) VALUES (?, ?, ?, ?, ?)", [
                .text(session.idHash), .text(record.issuer), .text(record.subject), .text(record.providerSessionID), .text(record.idToken),
            ])
            try await tx.changed(.user, session.userID)
            try await tx.changed(.session, session.idHash)
            return Self.user(row)
        }
    }

    public func oidcSignIn(sessionHash: String) async throws -> OIDCSignInRecord? {
        try await query("SELECT * FROM oidc_sign_ins WHERE session_hash = ?", [.text(sessionHash)]).first.map(Self.oidcSignIn)
    }

    public func oidcSignIns(issuer: String, providerSessionID: String?, subject: String?) async throws -> [OIDCSignInRecord] {
        var sql = "SELECT * FROM oidc_sign_ins WHERE issuer = ?"
        var binds: [SQLiteData] = [.text(issuer)]
        if let providerSessionID {
            sql += " AND provider_session = ?"
            binds.append(.text(providerSessionID))
        }
        if let subject {
            sql += " AND subject = ?"
            binds.append(.text(subject))
        }
        return try await query(sql, binds).map(Self.oidcSignIn)
    }

    public func oidcIdentities() async throws -> [OIDCIdentityLink] {
        try await query("SELECT * FROM oidc_identities ORDER BY issuer, subject").map { row in
            OIDCIdentityLink(issuer: row.column("issuer")?.string ?? "", subject: row.column("subject")?.string ?? "",
                             userID: row.column("user_id")?.string ?? "", createdAt: Self.readDate(row, "created_at") ?? Date(timeIntervalSince1970: 0))
        }
    }

    public func saveOIDCIdentities(_ links: [OIDCIdentityLink]) async throws {
        try await write { tx in
            for link in links {
                try await tx.run("INSERT OR REPLACE INTO oidc_identities (issuer, subject, user_id, created_at) VALUES (?, ?, ?, ?)", [
                    .text(link.issuer), .text(link.subject), .text(link.userID), .float(link.createdAt.timeIntervalSince1970),
                ])
            }
        }
    }

    static func oidcSignIn(_ row: SQLiteRow) -> OIDCSignInRecord {
        OIDCSignInRecord(
            sessionHash: row.column("session_hash")?.string ?? "", issuer: row.column("issuer")?.string ?? "",
            subject: row.column("subject")?.string ?? "", providerSessionID: row.column("provider_session")?.string ?? "",
            idToken: row.column("id_token")?.string ?? "")
    }
}
