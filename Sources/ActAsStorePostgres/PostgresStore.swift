import ActAsCore
import ActAsStore
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The shared store (SPEC §10.2): several instances on one database. Same schema and meaning
/// as `SQLiteStore`. Every write transaction first takes one advisory lock, so change ids are
/// committed in the order they were drawn: a reader that has seen change N has seen every
/// change below N (a plain sequence would let N+1 commit before N, and a reader skip N). The
/// change row's `pg_notify` commits with it; `ChangeListener` turns it into a wake-up.
public final class PostgresStore: Store {
    let pool: RenewingPool
    var client: PostgresClient { pool.client }
    let logger: Logger
    public let endpoint: PostgresEndpoint
    /// What one statement or transaction may take before the caller is told `unavailable`.
    let operationLimit: Duration

    /// The NOTIFY channel; payloads are change ids only.
    public static let channel = "actas_changes"
    static let feedLockKey: Int64 = 0x6163_7461_7366_6565  // "actasfee"
    static let migrationLockKey: Int64 = 0x6163_7461_736d_6967  // "actasmig"

    private init(pool: RenewingPool, logger: Logger, endpoint: PostgresEndpoint, operationLimit: Duration) {
        self.pool = pool
        self.logger = logger
        self.endpoint = endpoint
        self.operationLimit = operationLimit
    }

    /// Starts the pool and checks the server answers (a wrong password or host fails here,
    /// with the reason, rather than on the first request).
    public static func open(
        _ endpoint: PostgresEndpoint, poolSize: Int = 8, applicationName: String = "actas",
        operationLimit: Duration = .seconds(3), logger: Logger = Logger(label: "actas.store")
    ) async throws -> PostgresStore {
        let configuration: PostgresClient.Configuration
        let probeConfiguration: PostgresConnection.Configuration
        do {
            configuration = try endpoint.clientConfiguration(poolSize: poolSize, applicationName: applicationName)
            probeConfiguration = try endpoint.connectionConfiguration(applicationName: applicationName)
        } catch {
            throw StoreError.invalid("cannot set up TLS for \(endpoint.description): \(error)")
        }
        let pool = RenewingPool(configuration: configuration, probeConfiguration: probeConfiguration, logger: logger)
        let store = PostgresStore(pool: pool, logger: logger, endpoint: endpoint, operationLimit: operationLimit)
        do {
            // A direct connection first: the pool retries a refused login quietly, this says why.
            let probe = try await PostgresConnection.connect(configuration: probeConfiguration, id: 0, logger: logger)
            try? await probe.close()
        } catch {
            await store.close()
            throw StoreError.unavailable("cannot open the store \(endpoint.description): \(Self.reason(error))")
        }
        return store
    }

    /// The server's own sentence when there is one (wrong password, no such database).
    static func reason(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return "\(underlying)" }
            return String(reflecting: error.code)
        }
        return "\(error)"
    }

    public func close() async {
        await pool.close()
    }

    // MARK: plumbing

    struct Transaction: Sendable {
        let connection: PostgresConnection
        let logger: Logger

        @discardableResult
        func run(_ query: PostgresQuery) async throws -> [Row] {
            try await connection.query(query, logger: logger).collect().map(Row.init)
        }

        /// Appends to the change feed and announces the new id when the transaction commits.
        func changed(_ kind: Change.Kind, _ key: String, at: Date = Date()) async throws {
            try await run("""
                WITH c AS (INSERT INTO changes (kind, key, at) VALUES (\(kind.rawValue), \(key), \(at.timeIntervalSince1970)) RETURNING id)
                SELECT pg_notify(\(PostgresStore.channel), id::text) FROM c
                """)
        }
    }

    /// One write transaction. `feed`: it appends to the change feed, so it takes the feed lock
    /// before anything else (before any row lock, so two writers cannot deadlock on it).
    @discardableResult
    func write<T: Sendable>(feed: Bool = true, _ what: String = #function, _ body: @escaping @Sendable (Transaction) async throws -> T) async throws -> T {
        try await perform(what) { client, logger in
            try await client.withTransaction(logger: logger) { connection in
                let tx = Transaction(connection: connection, logger: logger)
                if feed { try await tx.run("SELECT pg_advisory_xact_lock(\(Self.feedLockKey))") }
                return try await body(tx)
            }
        }
    }

    /// Reads that must see one consistent state.
    func read<T: Sendable>(_ what: String = #function, _ body: @escaping @Sendable (Transaction) async throws -> T) async throws -> T {
        try await perform(what) { client, logger in
            try await client.withTransaction(logger: logger) { connection in
                let tx = Transaction(connection: connection, logger: logger)
                try await tx.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return try await body(tx)
            }
        }
    }

    func query(_ query: PostgresQuery, _ what: String = #function) async throws -> [Row] {
        try await perform(what) { client, logger in
            try await client.query(query, logger: logger).collect().map(Row.init)
        }
    }

    private func perform<T: Sendable>(
        _ what: String, _ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T
    ) async throws -> T {
        let client = self.client
        let logger = self.logger
        do {
            return try await Deadline.run(operationLimit, what) { try await body(client, logger) }
        } catch {
            let translated = PostgresErrors.translate(error)
            if case .unavailable? = translated as? StoreError { pool.unreachable() }
            throw translated
        }
    }

    // MARK: migrations

    /// Runs pending migrations under an advisory lock: instances starting at once on an empty
    /// database apply each version exactly once (the others wait, then find nothing to do).
    public func migrate() async throws {
        let known = PostgresSchema.latestVersion
        let applied: Int = try await perform("migrate") { client, logger in
            try await client.withTransaction(logger: logger) { connection in
                let tx = Transaction(connection: connection, logger: logger)
                try await tx.run("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))")
                try await tx.run("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
                let done = Set(try await tx.run("SELECT version FROM schema_migrations").compactMap { $0.int("version") })
                if let newest = done.max(), newest > Int64(known) { return Int(newest) }
                for migration in PostgresSchema.migrations where !done.contains(Int64(migration.version)) {
                    for statement in migration.statements { try await tx.run(PostgresQuery(unsafeSQL: statement)) }
                    try await tx.run("INSERT INTO schema_migrations (version, applied_at) VALUES (\(Int64(migration.version)), \(Date().timeIntervalSince1970))")
                }
                return known
            }
        }
        if applied > known {
            throw StoreError.invalid("the store \(endpoint.description) has schema version \(applied); this actas knows up to \(known) — upgrade actas")
        }
    }

    /// Schema versions applied, oldest first (for tests and `store migrate`).
    public func appliedMigrations() async throws -> [Int] {
        try await query("SELECT version FROM schema_migrations ORDER BY version").compactMap { $0.int("version").map(Int.init) }
    }

    // MARK: snapshot and change feed

    public func snapshot(now: Date) async throws -> StoreSnapshot {
        let cutoff = now.timeIntervalSince1970
        return try await read { tx in
            let users = try await tx.run("SELECT * FROM users").map(Self.user)
            let sessions = try await tx.run("SELECT * FROM sessions WHERE expires_at > \(cutoff)").map(Self.session)
            let tokens = try await tx.run("SELECT * FROM api_tokens WHERE revoked_at IS NULL").map(Self.token)
            let keys = try await tx.run("SELECT * FROM signing_keys ORDER BY created_at").compactMap(Self.signingKey)
            let consents = try await tx.run("SELECT * FROM consents").map(Self.consent)
            let impersonations = try await tx.run("SELECT * FROM impersonations WHERE ended_at IS NULL OR notice_pending = 1").compactMap(Self.impersonation)
            let changeID = try await tx.run("SELECT COALESCE(MAX(id), 0)::BIGINT AS id FROM changes").first?.int("id") ?? 0
            return StoreSnapshot(users: users, sessions: sessions, tokens: tokens, keys: keys, consents: consents,
                                 impersonations: impersonations, changeID: changeID)
        }
    }

    public func changes(after id: Int64, limit: Int) async throws -> [Change]? {
        try await read { tx in
            if let oldest = try await tx.run("SELECT MIN(id)::BIGINT AS id FROM changes").first?.int("id"), oldest > id + 1 { return nil }
            return try await tx.run("SELECT id, kind, key FROM changes WHERE id > \(id) ORDER BY id LIMIT \(Int64(limit))").compactMap { row in
                guard let id = row.int("id"), let kind = row.string("kind").flatMap(Change.Kind.init(rawValue:)),
                      let key = row.string("key") else { return nil }
                return Change(id: id, kind: kind, key: key)
            }
        }
    }

    public func pruneChanges(before: Date) async throws {
        try await write { tx in
            try await tx.run("DELETE FROM changes WHERE at < \(before.timeIntervalSince1970) AND id < (SELECT MAX(id) FROM changes)")
        }
    }

    // MARK: instances

    public func latestChangeID() async throws -> Int64 {
        try await query("SELECT COALESCE(MAX(id), 0)::BIGINT AS id FROM changes").first?.int("id") ?? 0
    }

    public func registerInstance(_ instance: InstanceRecord) async throws {
        try await write(feed: false) { tx in
            try await tx.run("""
                INSERT INTO instances (id, admin_address, started_at, last_seen)
                VALUES (\(instance.id), \(instance.adminAddress), \(instance.startedAt.timeIntervalSince1970), \(instance.lastSeen.timeIntervalSince1970))
                ON CONFLICT (id) DO UPDATE SET admin_address = EXCLUDED.admin_address, started_at = EXCLUDED.started_at, last_seen = EXCLUDED.last_seen
                """)
        }
    }

    public func touchInstance(id: String, startedAt: Date, at: Date) async throws -> Bool {
        try await !query("""
            UPDATE instances SET last_seen = \(at.timeIntervalSince1970)
            WHERE id = \(id) AND started_at = \(startedAt.timeIntervalSince1970) RETURNING id
            """).isEmpty
    }

    public func removeInstance(id: String, startedAt: Date) async throws {
        _ = try await query("DELETE FROM instances WHERE id = \(id) AND started_at = \(startedAt.timeIntervalSince1970)")
    }

    public func forgetInstances(lastSeenBefore before: Date) async throws {
        _ = try await query("DELETE FROM instances WHERE last_seen < \(before.timeIntervalSince1970)")
    }

    public func instances() async throws -> [InstanceRecord] {
        try await query("SELECT * FROM instances ORDER BY id").compactMap { row in
            guard let id = row.string("id"), let address = row.string("admin_address"),
                  let started = row.date("started_at"), let seen = row.date("last_seen") else { return nil }
            return InstanceRecord(id: id, adminAddress: address, startedAt: started, lastSeen: seen)
        }
    }

    // MARK: users

    public func users() async throws -> [User] {
        try await query("SELECT * FROM users ORDER BY username").map(Self.user)
    }

    public func user(id: String) async throws -> User? {
        try await query("SELECT * FROM users WHERE id = \(id)").first.map(Self.user)
    }

    public func user(username: String) async throws -> User? {
        try await query("SELECT * FROM users WHERE username = \(username)").first.map(Self.user)
    }

    public func saveUsers(_ users: [User]) async throws {
        try await write { tx in
            for user in users {
                let existing = try await tx.run("SELECT id FROM users WHERE username = \(user.username)").first?.string("id")
                if let existing, existing != user.id {
                    throw StoreError.conflict("user \(user.username) already exists with id \(existing), not \(user.id)")
                }
                let groups = Self.encodeGroups(user.groups)
                let lastLogin = user.lastLogin?.timeIntervalSince1970
                if existing == nil {
                    try await tx.run("""
                        INSERT INTO users (id, username, email, name, role, groups_json, org_unit, status, last_login, password_hash, created_at, updated_at)
                        VALUES (\(user.id), \(user.username), \(user.email), \(user.name), \(user.role), \(groups), \(user.orgUnit),
                                \(user.status.rawValue), \(lastLogin), \(user.passwordHash), \(user.createdAt.timeIntervalSince1970),
                                \(user.updatedAt.timeIntervalSince1970))
                        """)
                } else {
                    try await tx.run("""
                        UPDATE users SET email = \(user.email), name = \(user.name), role = \(user.role), groups_json = \(groups),
                            org_unit = \(user.orgUnit), status = \(user.status.rawValue), last_login = \(lastLogin),
                            password_hash = \(user.passwordHash), updated_at = \(user.updatedAt.timeIntervalSince1970)
                        WHERE id = \(user.id)
                        """)
                }
                if !user.status.maySignIn {
                    for row in try await tx.run("DELETE FROM sessions WHERE user_id = \(user.id) RETURNING id_hash") {
                        if let hash = row.string("id_hash") { try await tx.changed(.session, hash) }
                    }
                }
                try await tx.changed(.user, user.id)
            }
        }
    }

    public func recordSignIn(userID: String, at: Date, session: SignInSession) async throws -> User {
        try await write { tx in
            let rows = try await tx.run("""
                UPDATE users SET last_login = \(at.timeIntervalSince1970), updated_at = \(at.timeIntervalSince1970),
                    status = CASE status WHEN 'invited' THEN 'active' ELSE status END
                WHERE id = \(userID) AND status IN ('active', 'invited') RETURNING *
                """)
            guard let row = rows.first else { throw StoreError.notFound("user \(userID) may not sign in") }
            try await tx.run("""
                INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, client_ip)
                VALUES (\(session.idHash), \(session.userID), \(session.csrfToken), \(session.createdAt.timeIntervalSince1970),
                        \(session.expiresAt.timeIntervalSince1970), \(session.clientIP))
                """)
            try await tx.changed(.user, userID)
            try await tx.changed(.session, session.idHash)
            return Self.user(row)
        }
    }

    // MARK: sessions

    public func session(idHash: String) async throws -> SignInSession? {
        try await query("SELECT * FROM sessions WHERE id_hash = \(idHash)").first.map(Self.session)
    }

    public func deleteSession(idHash: String) async throws {
        try await write { tx in
            try await tx.run("DELETE FROM sessions WHERE id_hash = \(idHash)")
            try await tx.changed(.session, idHash)
        }
    }

    public func deleteExpiredSessions(before: Date) async throws -> Int {
        try await write { tx in
            let rows = try await tx.run("DELETE FROM sessions WHERE expires_at <= \(before.timeIntervalSince1970) RETURNING id_hash")
            for row in rows {
                if let hash = row.string("id_hash") { try await tx.changed(.session, hash) }
            }
            return rows.count
        }
    }

    // MARK: tokens

    public func insertToken(_ token: APIToken) async throws {
        try await write { tx in
            try await tx.run("""
                INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, revoked_at)
                VALUES (\(token.id), \(token.userID), \(token.name), \(token.tokenHash), \(token.createdAt.timeIntervalSince1970),
                        \(token.revokedAt?.timeIntervalSince1970))
                """)
            try await tx.changed(.token, token.tokenHash)
        }
    }

    public func tokens(userID: String?) async throws -> [APIToken] {
        if let userID {
            return try await query("SELECT * FROM api_tokens WHERE user_id = \(userID) ORDER BY created_at").map(Self.token)
        }
        return try await query("SELECT * FROM api_tokens ORDER BY created_at").map(Self.token)
    }

    public func token(hash: String) async throws -> APIToken? {
        try await query("SELECT * FROM api_tokens WHERE token_hash = \(hash)").first.map(Self.token)
    }

    public func revokeToken(id: String, at: Date) async throws -> APIToken {
        try await write { tx in
            let rows = try await tx.run("""
                UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, \(at.timeIntervalSince1970)) WHERE id = \(id) RETURNING *
                """)
            guard let row = rows.first else { throw StoreError.notFound("no token with id \(id)") }
            let token = Self.token(row)
            try await tx.changed(.token, token.tokenHash)
            return token
        }
    }

    // MARK: signing keys

    public func signingKeys() async throws -> [SigningKeyRecord] {
        try await query("SELECT * FROM signing_keys ORDER BY created_at").compactMap(Self.signingKey)
    }

    public func addSigningKey(_ key: SigningKeyRecord, retiring expectedCurrent: String?, at: Date) async throws -> Bool {
        try await write { tx in
            let current = try await tx.run("SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1").first?.string("kid")
            guard current == expectedCurrent else { return false }
            try await tx.run("UPDATE signing_keys SET retired_at = \(at.timeIntervalSince1970) WHERE retired_at IS NULL")
            try await tx.run("""
                INSERT INTO signing_keys (kid, private_key, created_at, retired_at)
                VALUES (\(key.kid), \(ByteBuffer(bytes: key.privateKey)), \(key.createdAt.timeIntervalSince1970), NULL)
                """)
            try await tx.changed(.key, key.kid)
            return true
        }
    }

    public func deleteSigningKeys(retiredBefore: Date) async throws {
        try await write { tx in
            let now = Date()
            for row in try await tx.run("""
                DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < \(retiredBefore.timeIntervalSince1970) RETURNING *
                """) {
                guard let key = Self.signingKey(row) else { continue }
                if let archived = RetiredPublicKey(kid: key.kid, privateKey: key.privateKey, createdAt: key.createdAt, deletedAt: now) {
                    try await Self.archive(archived, in: tx)
                }
                try await tx.changed(.key, key.kid)
            }
        }
    }

    // MARK: consent

    public func consent(userID: String) async throws -> Consent? {
        try await query("SELECT * FROM consents WHERE user_id = \(userID)").first.map(Self.consent)
    }

    public func saveConsent(_ consent: Consent) async throws {
        try await write { tx in
            try await tx.run("""
                INSERT INTO consents (user_id, granted_at, expires_at, revoked_at)
                VALUES (\(consent.userID), \(consent.grantedAt.timeIntervalSince1970), \(consent.expiresAt.timeIntervalSince1970),
                        \(consent.revokedAt?.timeIntervalSince1970))
                ON CONFLICT (user_id) DO UPDATE SET granted_at = EXCLUDED.granted_at, expires_at = EXCLUDED.expires_at,
                    revoked_at = EXCLUDED.revoked_at
                """)
            try await tx.changed(.consent, consent.userID)
        }
    }

    // MARK: impersonation

    public func impersonation(id: String) async throws -> ImpersonationSession? {
        try await query("SELECT * FROM impersonations WHERE id = \(id)").first.flatMap(Self.impersonation)
    }

    public func impersonations(activeOnly: Bool) async throws -> [ImpersonationSession] {
        let rows = activeOnly
            ? try await query("SELECT * FROM impersonations WHERE ended_at IS NULL ORDER BY started_at DESC")
            : try await query("SELECT * FROM impersonations ORDER BY started_at DESC")
        return rows.compactMap(Self.impersonation)
    }

    public func startImpersonation(_ session: ImpersonationSession) async throws -> Bool {
        try await write { tx in
            let open = try await tx.run("SELECT id FROM impersonations WHERE actor_id = \(session.actorID) AND ended_at IS NULL")
            guard open.isEmpty else { return false }
            try await tx.run("""
                INSERT INTO impersonations (id, actor_id, target_id, reason, mode, started_at, expires_at, ended_at, end_reason, sign_in_session)
                VALUES (\(session.id), \(session.actorID), \(session.targetID), \(session.reason), \(session.mode.rawValue),
                        \(session.startedAt.timeIntervalSince1970), \(session.expiresAt.timeIntervalSince1970),
                        \(session.endedAt?.timeIntervalSince1970), \(session.endReason?.rawValue), \(session.signInSession))
                """)
            try await tx.changed(.impersonation, session.id)
            return true
        }
    }

    public func updateImpersonation(_ session: ImpersonationSession) async throws {
        try await write { tx in
            try await tx.run("""
                UPDATE impersonations SET actor_id = \(session.actorID), target_id = \(session.targetID), reason = \(session.reason),
                    mode = \(session.mode.rawValue), started_at = \(session.startedAt.timeIntervalSince1970),
                    expires_at = \(session.expiresAt.timeIntervalSince1970), ended_at = \(session.endedAt?.timeIntervalSince1970),
                    end_reason = \(session.endReason?.rawValue), sign_in_session = \(session.signInSession)
                WHERE id = \(session.id)
                """)
            try await tx.changed(.impersonation, session.id)
        }
    }

    public func impersonations(actorID: String?, targetID: String?, limit: Int) async throws -> [ImpersonationSession] {
        try await query("""
            SELECT * FROM impersonations
            WHERE (\(actorID)::TEXT IS NULL OR actor_id = \(actorID)) AND (\(targetID)::TEXT IS NULL OR target_id = \(targetID))
            ORDER BY started_at DESC LIMIT \(Int64(limit))
            """).compactMap(Self.impersonation)
    }

    public func endImpersonation(id: String, at: Date, reason: EndReason, notice: Bool) async throws -> ImpersonationSession? {
        try await write { tx in
            let rows = try await tx.run("""
                UPDATE impersonations SET ended_at = \(at.timeIntervalSince1970), end_reason = \(reason.rawValue),
                    notice_pending = \(Int64(notice ? 1 : 0))
                WHERE id = \(id) AND ended_at IS NULL RETURNING *
                """)
            guard let row = rows.first else { return nil }
            try await tx.changed(.impersonation, id)
            return Self.impersonation(row)
        }
    }

    public func clearEndNotice(id: String) async throws {
        try await write { tx in
            try await tx.run("UPDATE impersonations SET notice_pending = 0 WHERE id = \(id)")
            try await tx.changed(.impersonation, id)
        }
    }

    // MARK: session records

    public func appendSessionAudit(_ lines: [SessionAuditLine]) async throws {
        guard !lines.isEmpty else { return }
        try await write(feed: false) { tx in
            // One statement per 1000 lines (arrays bound as parameters), not a round trip per line.
            for start in stride(from: 0, to: lines.count, by: 1000) {
                let part = lines[start..<min(start + 1000, lines.count)]
                let ids = part.map(\.sessionID), instances = part.map(\.instance), seqs = part.map(\.seq), texts = part.map(\.line)
                let times = part.map(\.timestamp.timeIntervalSince1970)
                // A record the log wrote twice (same instance and seq) is the same line: keep one.
                try await tx.run("""
                    INSERT INTO session_audit (session_id, instance, seq, ts, line)
                    SELECT * FROM unnest(\(ids)::text[], \(instances)::text[], \(seqs)::bigint[], \(times)::double precision[], \(texts)::text[])
                    ON CONFLICT (session_id, instance, seq) DO NOTHING
                    """)
            }
        }
    }

    /// Time order, ties by instance then seq: as `SQLiteStore.sessionAudit`.
    public func sessionAudit(sessionID: String) async throws -> [SessionAuditLine] {
        try await query("SELECT * FROM session_audit WHERE session_id = \(sessionID) ORDER BY ts, instance, seq").map { row in
            SessionAuditLine(sessionID: row.string("session_id") ?? "", instance: row.string("instance") ?? "", seq: row.int("seq") ?? 0,
                             timestamp: row.date("ts") ?? Date(timeIntervalSince1970: 0), line: row.string("line") ?? "")
        }
    }

    // MARK: checkpoints (SPEC §10.6)

    public func saveCheckpoint(_ checkpoint: AuditCheckpoint) async throws {
        try await write(feed: false) { tx in
            try await tx.run("""
                INSERT INTO checkpoints (instance, seq, covers, head, kid, sig, at)
                VALUES (\(checkpoint.instance), \(Int64(checkpoint.seq)), \(Int64(checkpoint.covers)), \(checkpoint.head),
                        \(checkpoint.kid), \(checkpoint.sig), \(checkpoint.timestamp.timeIntervalSince1970))
                ON CONFLICT (instance, seq) DO UPDATE SET covers = EXCLUDED.covers, head = EXCLUDED.head, kid = EXCLUDED.kid,
                    sig = EXCLUDED.sig, at = EXCLUDED.at
                """)
        }
    }

    public func latestCheckpoint(instance: String) async throws -> AuditCheckpoint? {
        try await query("SELECT * FROM checkpoints WHERE instance = \(instance) ORDER BY seq DESC LIMIT 1").first.map { row in
            AuditCheckpoint(
                seq: UInt64(max(0, row.int("seq") ?? 0)), covers: UInt64(max(0, row.int("covers") ?? 0)),
                head: row.string("head") ?? "", instance: row.string("instance") ?? "",
                kid: row.string("kid") ?? "", sig: row.string("sig") ?? "", timestamp: row.date("at") ?? Self.epoch)
        }
    }
}
