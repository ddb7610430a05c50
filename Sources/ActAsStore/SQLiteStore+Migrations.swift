import Foundation
import SQLiteNIO

/// The SQLite schema, as numbered migrations (the PostgreSQL store keeps the same numbers).
extension SQLiteStore {
    static let migrations: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE users (
                id TEXT PRIMARY KEY,
                username TEXT NOT NULL UNIQUE,
                email TEXT NOT NULL DEFAULT '',
                name TEXT NOT NULL DEFAULT '',
                role TEXT NOT NULL,
                groups_json TEXT NOT NULL DEFAULT '[]',
                org_unit TEXT NOT NULL DEFAULT '',
                status TEXT NOT NULL,
                last_login REAL,
                password_hash TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)
            """,
            """
            CREATE TABLE sessions (
                id_hash TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                csrf_token TEXT NOT NULL,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                client_ip TEXT NOT NULL DEFAULT '')
            """,
            "CREATE INDEX sessions_by_user ON sessions(user_id)",
            """
            CREATE TABLE api_tokens (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                name TEXT NOT NULL DEFAULT '',
                token_hash TEXT NOT NULL UNIQUE,
                created_at REAL NOT NULL,
                revoked_at REAL)
            """,
            """
            CREATE TABLE signing_keys (
                kid TEXT PRIMARY KEY,
                private_key BLOB NOT NULL,
                created_at REAL NOT NULL,
                retired_at REAL)
            """,
            """
            CREATE TABLE consents (
                user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
                granted_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                revoked_at REAL)
            """,
            """
            CREATE TABLE impersonations (
                id TEXT PRIMARY KEY,
                actor_id TEXT NOT NULL,
                target_id TEXT NOT NULL,
                reason TEXT NOT NULL,
                mode TEXT NOT NULL,
                started_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                ended_at REAL,
                end_reason TEXT)
            """,
            // One open impersonation per administrator, enforced by the database itself.
            "CREATE UNIQUE INDEX impersonations_open_by_actor ON impersonations(actor_id) WHERE ended_at IS NULL",
            "CREATE INDEX impersonations_by_target ON impersonations(target_id)",
            """
            CREATE TABLE changes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                key TEXT NOT NULL,
                at REAL NOT NULL)
            """,
        ]),
        (2, [
            // An ended session whose administrator has not yet been told why (SPEC §7: the
            // first request after an announced end gets the notice).
            "ALTER TABLE impersonations ADD COLUMN notice_pending INTEGER NOT NULL DEFAULT 0",
        ]),
        (3, [
            """
            CREATE TABLE session_audit (
                session_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                ts REAL NOT NULL,
                line TEXT NOT NULL,
                PRIMARY KEY (session_id, seq))
            """,
        ]),
        (4, [
            // Running `actas serve` processes and their admin listeners (SPEC §10.1).
            """
            CREATE TABLE instances (
                id TEXT PRIMARY KEY,
                admin_address TEXT NOT NULL,
                started_at REAL NOT NULL,
                last_seen REAL NOT NULL)
            """,
        ]),
        (5, [
            // SPEC §7: an impersonation belongs to the sign-in session that started it (the
            // session's id hash; NULL on older rows: every sign-in of the administrator).
            "ALTER TABLE impersonations ADD COLUMN sign_in_session TEXT",
        ]),
        (6, [
            // The request log's signed checkpoints (SPEC §10.6), per writing instance.
            """
            CREATE TABLE checkpoints (
                instance TEXT NOT NULL,
                seq INTEGER NOT NULL,
                covers INTEGER NOT NULL,
                head TEXT NOT NULL,
                kid TEXT NOT NULL,
                sig TEXT NOT NULL,
                at REAL NOT NULL,
                PRIMARY KEY (instance, seq))
            """,
        ]),
        (7, notifyOutboxMigration),  // SPEC §10.5: the notification outbox (SQLiteStore+Notify.swift)
        (8, OIDCSchema.statements(dateType: "REAL")),  // SPEC §10.3: users by (issuer, sub), OIDC sign-ins
        (9, retiredPublicKeysMigration),  // SPEC §10.6: deleted keys' public halves (RetiredPublicKeys.swift)
        (10, oneUseMigration),  // SPEC §10.3: one-use sign-in flows and logout tokens (SQLiteStore+OneUse.swift)
        (11, sessionAuditByInstanceMigration),  // session records keyed by instance too (SQLiteStore+SessionAudit.swift)
    ]

    public func migrate() async throws {
        try await write { tx in
            try await tx.run("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            let applied = Set(try await tx.run("SELECT version FROM schema_migrations").compactMap { $0.column("version")?.integer })
            for migration in Self.migrations where !applied.contains(migration.version) {
                for statement in migration.statements { try await tx.run(statement) }
                try await tx.run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                                 [.integer(migration.version), .float(Date().timeIntervalSince1970)])
            }
        }
    }

    /// Highest schema version this build knows; a newer file is refused rather than misread.
    public func checkSchemaVersion() async throws {
        let rows = try await query("SELECT MAX(version) AS v FROM schema_migrations")
        let version = rows.first?.column("v")?.integer ?? 0
        let known = Self.migrations.map(\.version).max() ?? 0
        if version > known {
            throw StoreError.invalid("the store \(path) has schema version \(version); this actas knows up to \(known) — upgrade actas")
        }
    }
}
