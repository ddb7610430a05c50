/// The PostgreSQL schema: the same versions, tables and columns as `SQLiteStore.migrations`
/// (a store copied with `actas store migrate` means the same in both). Dates are seconds since
/// 1970 as `DOUBLE PRECISION` (SQLite's REAL), flags are integers, blobs are `BYTEA`.
enum PostgresSchema {
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
                last_login DOUBLE PRECISION,
                password_hash TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE sessions (
                id_hash TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                csrf_token TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                client_ip TEXT NOT NULL DEFAULT '')
            """,
            "CREATE INDEX sessions_by_user ON sessions(user_id)",
            """
            CREATE TABLE api_tokens (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                name TEXT NOT NULL DEFAULT '',
                token_hash TEXT NOT NULL UNIQUE,
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE signing_keys (
                kid TEXT PRIMARY KEY,
                private_key BYTEA NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                retired_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE consents (
                user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
                granted_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION)
            """,
            """
            CREATE TABLE impersonations (
                id TEXT PRIMARY KEY,
                actor_id TEXT NOT NULL,
                target_id TEXT NOT NULL,
                reason TEXT NOT NULL,
                mode TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                ended_at DOUBLE PRECISION,
                end_reason TEXT)
            """,
            // One open impersonation per administrator, enforced by the database itself.
            "CREATE UNIQUE INDEX impersonations_open_by_actor ON impersonations(actor_id) WHERE ended_at IS NULL",
            "CREATE INDEX impersonations_by_target ON impersonations(target_id)",
            """
            CREATE TABLE changes (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kind TEXT NOT NULL,
                key TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL)
            """,
        ]),
        (2, [
            "ALTER TABLE impersonations ADD COLUMN notice_pending BIGINT NOT NULL DEFAULT 0",
        ]),
        (3, [
            """
            CREATE TABLE session_audit (
                session_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                line TEXT NOT NULL,
                PRIMARY KEY (session_id, seq))
            """,
        ]),
        (4, [
            """
            CREATE TABLE instances (
                id TEXT PRIMARY KEY,
                admin_address TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                last_seen DOUBLE PRECISION NOT NULL)
            """,
        ]),
        (5, [
            // SPEC §7: an impersonation belongs to the sign-in session that started it.
            "ALTER TABLE impersonations ADD COLUMN sign_in_session TEXT",
        ]),
        (6, [
            """
            CREATE TABLE checkpoints (
                instance TEXT NOT NULL,
                seq BIGINT NOT NULL,
                covers BIGINT NOT NULL,
                head TEXT NOT NULL,
                kid TEXT NOT NULL,
                sig TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (instance, seq))
            """,
        ]),
        (7, PostgresStore.notifyOutboxMigration),  // the notification outbox (PostgresStore+Notify.swift)
        (8, PostgresStore.oidcMigration),  // users by (issuer, sub), OIDC sign-ins (PostgresStore+OIDC.swift)
        (9, PostgresStore.retiredPublicKeysMigration),  // deleted keys' public halves (PostgresStore+KeyArchive.swift)
        (10, PostgresStore.oneUseMigration),  // one-use sign-in flows and logout tokens (PostgresStore+OneUse.swift)
        (11, [
            // Session records keyed by instance too: each instance numbers its own log (SPEC §10.2).
            "ALTER TABLE session_audit ADD COLUMN instance TEXT NOT NULL DEFAULT ''",
            // A pattern, not a jsonb cast: jsonb refuses a logged \u0000, and one such line would
            // stop the migration (and the instance from starting).
            #"UPDATE session_audit SET instance = COALESCE(substring(line from '"instance":"([^"]*)"'), '')"#,
            "ALTER TABLE session_audit ALTER COLUMN instance DROP DEFAULT",
            "ALTER TABLE session_audit DROP CONSTRAINT session_audit_pkey, ADD PRIMARY KEY (session_id, instance, seq)",
        ]),
    ]

    static var latestVersion: Int { migrations.map(\.version).max() ?? 0 }
}
