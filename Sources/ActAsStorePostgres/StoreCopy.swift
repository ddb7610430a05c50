import ActAsCore
import ActAsStore
import Foundation
import PostgresNIO

/// What `actas store migrate` copies (SPEC §10.2): users, consents, tokens, keys and session
/// records (sign-in sessions still valid, impersonation sessions and their request records).
public struct StoreContents: Sendable {
    public var users: [User] = []
    public var sessions: [SignInSession] = []
    public var tokens: [APIToken] = []
    public var keys: [SigningKeyRecord] = []
    public var retiredKeys: [RetiredPublicKey] = []
    public var consents: [Consent] = []
    public var impersonations: [ImpersonationSession] = []
    public var sessionAudit: [SessionAuditLine] = []
    /// Users' links to their identity provider subjects (SPEC §10.3), so OIDC users stay themselves.
    public var oidcIdentities: [OIDCIdentityLink] = []

    public init() {}

    /// Everything worth copying from `store`, read through the `Store` protocol (so any store
    /// can be the source). Expired sign-in sessions are not worth copying.
    public static func read(from store: any Store, now: Date = Date()) async throws -> StoreContents {
        var contents = StoreContents()
        let snapshot = try await store.snapshot(now: now)
        contents.users = try await store.users()
        contents.sessions = snapshot.sessions
        contents.tokens = try await store.tokens(userID: nil)
        contents.keys = try await store.signingKeys()
        contents.retiredKeys = try await store.retiredPublicKeys()
        contents.oidcIdentities = try await store.oidcIdentities()
        for user in contents.users {
            if let consent = try await store.consent(userID: user.id) { contents.consents.append(consent) }
        }
        contents.impersonations = try await store.impersonations(activeOnly: false)
        for session in contents.impersonations {
            contents.sessionAudit += try await store.sessionAudit(sessionID: session.id)
        }
        return contents
    }

    /// `name: count` lines, in copy order.
    public var counts: [(String, Int)] {
        [("users", users.count), ("consents", consents.count), ("api tokens", tokens.count), ("signing keys", keys.count), ("retired public keys", retiredKeys.count),
         ("sign-in sessions", sessions.count), ("impersonation sessions", impersonations.count),
         ("session records", sessionAudit.count), ("identity provider links", oidcIdentities.count)]
    }
}

extension PostgresStore {
    /// Writes `contents` into this (migrated, empty) database in one transaction: all of it,
    /// or — on any error, or when the database already has users — nothing.
    public func importContents(_ contents: StoreContents) async throws {
        let limit = max(operationLimit, .seconds(600))
        let client = self.client
        let logger = self.logger
        do {
            try await Deadline.run(limit, "store migrate") {
                try await client.withTransaction(logger: logger) { connection in
                    let tx = Transaction(connection: connection, logger: logger)
                    try await tx.run("SELECT pg_advisory_xact_lock(\(Self.feedLockKey))")
                    let existing = try await tx.run("SELECT count(*)::BIGINT AS n FROM users").first?.int("n") ?? 0
                    guard existing == 0 else {
                        throw StoreError.conflict("the target store already has \(existing) users; migrate into an empty database")
                    }
                    try await Self.insert(contents, tx)
                    // Copied history is not news: the outbox triggers fired for copied rows.
                    try await tx.run("DELETE FROM notify_outbox")
                    // Instances that start on the copy load a snapshot; one change row marks where the feed begins.
                    try await tx.changed(.key, contents.keys.last?.kid ?? "")
                }
            }
        } catch {
            throw PostgresErrors.translate(error)
        }
    }

    private static func insert(_ contents: StoreContents, _ tx: Transaction) async throws {
        for user in contents.users {
            try await tx.run("""
                INSERT INTO users (id, username, email, name, role, groups_json, org_unit, status, last_login, password_hash, created_at, updated_at)
                VALUES (\(user.id), \(user.username), \(user.email), \(user.name), \(user.role), \(encodeGroups(user.groups)), \(user.orgUnit),
                        \(user.status.rawValue), \(user.lastLogin?.timeIntervalSince1970), \(user.passwordHash),
                        \(user.createdAt.timeIntervalSince1970), \(user.updatedAt.timeIntervalSince1970))
                """)
        }
        for link in contents.oidcIdentities {
            try await tx.run("""
                INSERT INTO oidc_identities (issuer, subject, user_id, created_at)
                VALUES (\(link.issuer), \(link.subject), \(link.userID), \(link.createdAt.timeIntervalSince1970))
                """)
        }
        for consent in contents.consents {
            try await tx.run("""
                INSERT INTO consents (user_id, granted_at, expires_at, revoked_at)
                VALUES (\(consent.userID), \(consent.grantedAt.timeIntervalSince1970), \(consent.expiresAt.timeIntervalSince1970),
                        \(consent.revokedAt?.timeIntervalSince1970))
                """)
        }
        for token in contents.tokens {
            try await tx.run("""
                INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, revoked_at)
                VALUES (\(token.id), \(token.userID), \(token.name), \(token.tokenHash), \(token.createdAt.timeIntervalSince1970),
                        \(token.revokedAt?.timeIntervalSince1970))
                """)
        }
        for key in contents.keys {
            try await tx.run("""
                INSERT INTO signing_keys (kid, private_key, created_at, retired_at)
                VALUES (\(key.kid), \(ByteBuffer(bytes: key.privateKey)), \(key.createdAt.timeIntervalSince1970), \(key.retiredAt?.timeIntervalSince1970))
                """)
        }
        for key in contents.retiredKeys { try await Self.archive(key, in: tx) }
        for session in contents.sessions {
            try await tx.run("""
                INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, client_ip)
                VALUES (\(session.idHash), \(session.userID), \(session.csrfToken), \(session.createdAt.timeIntervalSince1970),
                        \(session.expiresAt.timeIntervalSince1970), \(session.clientIP))
                """)
        }
        for session in contents.impersonations {
            try await tx.run("""
                INSERT INTO impersonations (id, actor_id, target_id, reason, mode, started_at, expires_at, ended_at, end_reason,
                                            notice_pending, sign_in_session)
                VALUES (\(session.id), \(session.actorID), \(session.targetID), \(session.reason), \(session.mode.rawValue),
                        \(session.startedAt.timeIntervalSince1970), \(session.expiresAt.timeIntervalSince1970),
                        \(session.endedAt?.timeIntervalSince1970), \(session.endReason?.rawValue), \(Int64(session.noticePending ? 1 : 0)),
                        \(session.signInSession))
                """)
        }
        for line in contents.sessionAudit {
            try await tx.run("""
                INSERT INTO session_audit (session_id, instance, seq, ts, line)
                VALUES (\(line.sessionID), \(line.instance), \(line.seq), \(line.timestamp.timeIntervalSince1970), \(line.line))
                """)
        }
    }
}
