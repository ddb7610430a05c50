import ActAsCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO

/// The default store: one SQLite file in WAL mode. Several processes may open it at once (the
/// server and `actas` commands): writes take the database lock with `BEGIN IMMEDIATE` and
/// wait for each other (`busy_timeout`), and the change feed tells every process what others
/// wrote.
public final class SQLiteStore: Store {
    private let connection: SQLiteConnection
    /// Its own thread: a statement waiting out `busy_timeout` for another process's lock
    /// blocks only this store, never the shared pool that password hashing uses.
    private let threadPool: NIOThreadPool
    private let gate = TransactionGate()
    public let path: String

    private init(connection: SQLiteConnection, threadPool: NIOThreadPool, path: String) {
        self.connection = connection
        self.threadPool = threadPool
        self.path = path
    }

    /// Opens (creating the file and its folder if needed) and configures the connection.
    public static func open(path: String, logger: Logger = Logger(label: "actas.store")) async throws -> SQLiteStore {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let existed = FileManager.default.fileExists(atPath: path)
        let connection: SQLiteConnection
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        do {
            connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: threadPool, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any())
        } catch {
            try? await threadPool.shutdownGracefully()
            throw StoreError.unavailable("cannot open the store \(path): \(error)")
        }
        if !existed {
            // Password hashes, session hashes and signing keys live here: owner only.
            chmod(path, 0o600)
        }
        let store = SQLiteStore(connection: connection, threadPool: threadPool, path: path)
        // busy_timeout first: switching to WAL needs a lock another process may hold.
        _ = try await store.run("PRAGMA busy_timeout = 10000")
        // Switching to WAL takes the database lock and does not always wait for it (SQLite
        // answers SQLITE_BUSY at once when another process is opening the file too): retry.
        for attempt in 1...200 {
            do {
                _ = try await store.run("PRAGMA journal_mode = WAL")
                break
            } catch StoreError.unavailable(let message) where message.contains("locked") || message.contains("busy") {
                if attempt == 200 { throw StoreError.unavailable(message) }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        // FULL: a revocation or sign-out must survive a power cut, and writes are rare.
        _ = try await store.run("PRAGMA synchronous = FULL")
        _ = try await store.run("PRAGMA foreign_keys = ON")
        return store
    }

    public func close() async {
        try? await connection.close()
        try? await threadPool.shutdownGracefully()
    }

    // MARK: plumbing

    @discardableResult
    private func run(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        do {
            return try await connection.query(sql, binds)
        } catch let error as SQLiteError {
            throw Self.translate(error)
        }
    }

    static func translate(_ error: SQLiteError) -> StoreError {
        let text = "\(error)"
        if text.contains("UNIQUE") || text.contains("constraint") { return .conflict(text) }
        return .unavailable("store error: \(text)")
    }

    /// Runs `body` as one write transaction, serialised with this process's other
    /// transactions (one connection) and other processes' (`BEGIN IMMEDIATE`).
    @discardableResult
    func write<T: Sendable>(_ body: @Sendable (Transaction) async throws -> T) async throws -> T {
        await gate.lock()
        do {
            try await run("BEGIN IMMEDIATE")
            do {
                let result = try await body(Transaction(store: self))
                try await run("COMMIT")
                await gate.unlock()
                return result
            } catch {
                _ = try? await run("ROLLBACK")
                throw error
            }
        } catch {
            await gate.unlock()
            throw error
        }
    }

    /// Reads that must see one consistent state (a deferred transaction).
    private func read<T: Sendable>(_ body: @Sendable (Transaction) async throws -> T) async throws -> T {
        await gate.lock()
        do {
            try await run("BEGIN")
            let result = try await body(Transaction(store: self))
            try await run("COMMIT")
            await gate.unlock()
            return result
        } catch {
            _ = try? await run("ROLLBACK")
            await gate.unlock()
            throw error
        }
    }

    /// Single statements outside a transaction still queue behind open transactions.
    func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        await gate.lock()
        do {
            let rows = try await run(sql, binds)
            await gate.unlock()
            return rows
        } catch {
            await gate.unlock()
            throw error
        }
    }

    struct Transaction: Sendable {
        let store: SQLiteStore

        @discardableResult
        func run(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
            try await store.run(sql, binds)
        }

        func changed(_ kind: Change.Kind, _ key: String, at: Date = Date()) async throws {
            try await run("INSERT INTO changes (kind, key, at) VALUES (?, ?, ?)", [.text(kind.rawValue), .text(key), .float(at.timeIntervalSince1970)])
        }
    }

    // MARK: snapshot and change feed

    public func snapshot(now: Date) async throws -> StoreSnapshot {
        try await read { tx in
            let users = try await tx.run("SELECT * FROM users").map(Self.user)
            let sessions = try await tx.run("SELECT * FROM sessions WHERE expires_at > ?", [.float(now.timeIntervalSince1970)]).map(Self.session)
            let tokens = try await tx.run("SELECT * FROM api_tokens WHERE revoked_at IS NULL").map(Self.token)
            let keys = try await tx.run("SELECT * FROM signing_keys ORDER BY created_at").compactMap(Self.signingKey)
            let consents = try await tx.run("SELECT * FROM consents").map(Self.consent)
            let impersonations = try await tx.run("SELECT * FROM impersonations WHERE ended_at IS NULL OR notice_pending = 1").compactMap(Self.impersonation)
            let changeID = try await tx.run("SELECT COALESCE(MAX(id), 0) AS id FROM changes").first?.column("id")?.integer ?? 0
            return StoreSnapshot(users: users, sessions: sessions, tokens: tokens, keys: keys, consents: consents,
                                 impersonations: impersonations, changeID: Int64(changeID))
        }
    }

    public func changes(after id: Int64, limit: Int) async throws -> [Change]? {
        try await read { tx in
            // If the row right after `id` was pruned, the reader missed changes.
            let oldest = try await tx.run("SELECT MIN(id) AS id FROM changes").first?.column("id")?.integer
            if let oldest, Int64(oldest) > id + 1 { return nil }
            return try await tx.run("SELECT id, kind, key FROM changes WHERE id > ? ORDER BY id LIMIT ?", [.integer(Int(id)), .integer(limit)])
                .compactMap { row in
                    guard let id = row.column("id")?.integer, let kind = row.column("kind")?.string.flatMap(Change.Kind.init(rawValue:)),
                          let key = row.column("key")?.string else { return nil }
                    return Change(id: Int64(id), kind: kind, key: key)
                }
        }
    }

    public func pruneChanges(before: Date) async throws {
        try await write { tx in
            // Keep the newest row so the feed position never goes backwards.
            try await tx.run("DELETE FROM changes WHERE at < ? AND id < (SELECT MAX(id) FROM changes)", [.float(before.timeIntervalSince1970)])
        }
    }

    // MARK: instances

    public func latestChangeID() async throws -> Int64 {
        let rows = try await query("SELECT COALESCE(MAX(id), 0) AS id FROM changes")
        return Int64(rows.first?.column("id")?.integer ?? 0)
    }

    public func registerInstance(_ instance: InstanceRecord) async throws {
        try await write { tx in
            try await tx.run(
                "INSERT OR REPLACE INTO instances (id, admin_address, started_at, last_seen) VALUES (?, ?, ?, ?)",
                [.text(instance.id), .text(instance.adminAddress), .float(instance.startedAt.timeIntervalSince1970),
                 .float(instance.lastSeen.timeIntervalSince1970)])
        }
    }

    public func touchInstance(id: String, startedAt: Date, at: Date) async throws -> Bool {
        try await write { tx in
            try await tx.run("UPDATE instances SET last_seen = ? WHERE id = ? AND started_at = ?",
                             [.float(at.timeIntervalSince1970), .text(id), .float(startedAt.timeIntervalSince1970)])
            return try await tx.run("SELECT changes() AS n").first?.column("n")?.integer ?? 0 > 0
        }
    }

    public func removeInstance(id: String, startedAt: Date) async throws {
        try await write { tx in
            try await tx.run("DELETE FROM instances WHERE id = ? AND started_at = ?", [.text(id), .float(startedAt.timeIntervalSince1970)])
        }
    }

    public func forgetInstances(lastSeenBefore before: Date) async throws {
        try await write { tx in
            try await tx.run("DELETE FROM instances WHERE last_seen < ?", [.float(before.timeIntervalSince1970)])
        }
    }

    public func instances() async throws -> [InstanceRecord] {
        try await query("SELECT * FROM instances ORDER BY id").compactMap { row in
            guard let id = row.column("id")?.string, let address = row.column("admin_address")?.string,
                  let started = Self.readDate(row, "started_at"), let seen = Self.readDate(row, "last_seen") else { return nil }
            return InstanceRecord(id: id, adminAddress: address, startedAt: started, lastSeen: seen)
        }
    }

    // MARK: users

    public func users() async throws -> [User] {
        try await query("SELECT * FROM users ORDER BY username").map(Self.user)
    }

    public func user(id: String) async throws -> User? {
        try await query("SELECT * FROM users WHERE id = ?", [.text(id)]).first.map(Self.user)
    }

    public func user(username: String) async throws -> User? {
        try await query("SELECT * FROM users WHERE username = ?", [.text(username)]).first.map(Self.user)
    }

    public func saveUsers(_ users: [User]) async throws {
        try await write { tx in
            for user in users {
                let existing = try await tx.run("SELECT id FROM users WHERE username = ?", [.text(user.username)]).first?.column("id")?.string
                if let existing, existing != user.id {
                    throw StoreError.conflict("user \(user.username) already exists with id \(existing), not \(user.id)")
                }
                let groups = Self.encodeGroups(user.groups)
                let binds: [SQLiteData] = [
                    .text(user.id), .text(user.username), .text(user.email), .text(user.name), .text(user.role), .text(groups),
                    .text(user.orgUnit), .text(user.status.rawValue), Self.date(user.lastLogin), user.passwordHash.map(SQLiteData.text) ?? .null,
                    .float(user.createdAt.timeIntervalSince1970), .float(user.updatedAt.timeIntervalSince1970),
                ]
                if existing == nil {
                    try await tx.run("""
                        INSERT INTO users (id, username, email, name, role, groups_json, org_unit, status, last_login, password_hash, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """, binds)
                } else {
                    try await tx.run("""
                        UPDATE users SET id = ?1, username = ?2, email = ?3, name = ?4, role = ?5, groups_json = ?6, org_unit = ?7,
                            status = ?8, last_login = ?9, password_hash = ?10, updated_at = ?12 WHERE id = ?1
                        """, binds)
                }
                if !user.status.maySignIn {
                    for row in try await tx.run("DELETE FROM sessions WHERE user_id = ? RETURNING id_hash", [.text(user.id)]) {
                        if let hash = row.column("id_hash")?.string { try await tx.changed(.session, hash) }
                    }
                }
                try await tx.changed(.user, user.id)
            }
        }
    }

    public func recordSignIn(userID: String, at: Date, session: SignInSession) async throws -> User {
        try await write { tx in
            let rows = try await tx.run("""
                UPDATE users SET last_login = ?2, status = CASE status WHEN 'invited' THEN 'active' ELSE status END, updated_at = ?2
                WHERE id = ?1 AND status IN ('active', 'invited') RETURNING *
                """, [.text(userID), .float(at.timeIntervalSince1970)])
            guard let row = rows.first else { throw StoreError.notFound("user \(userID) may not sign in") }
            try await tx.run("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at, client_ip) VALUES (?, ?, ?, ?, ?, ?)", [
                .text(session.idHash), .text(session.userID), .text(session.csrfToken), .float(session.createdAt.timeIntervalSince1970),
                .float(session.expiresAt.timeIntervalSince1970), .text(session.clientIP),
            ])
            try await tx.changed(.user, userID)
            try await tx.changed(.session, session.idHash)
            return Self.user(row)
        }
    }

    // MARK: sessions

    public func session(idHash: String) async throws -> SignInSession? {
        try await query("SELECT * FROM sessions WHERE id_hash = ?", [.text(idHash)]).first.map(Self.session)
    }

    public func deleteSession(idHash: String) async throws {
        try await write { tx in
            try await tx.run("DELETE FROM sessions WHERE id_hash = ?", [.text(idHash)])
            try await tx.changed(.session, idHash)
        }
    }

    public func deleteExpiredSessions(before: Date) async throws -> Int {
        try await write { tx in
            let rows = try await tx.run("DELETE FROM sessions WHERE expires_at <= ? RETURNING id_hash", [.float(before.timeIntervalSince1970)])
            for row in rows {
                if let hash = row.column("id_hash")?.string { try await tx.changed(.session, hash) }
            }
            return rows.count
        }
    }

    // MARK: tokens

    public func insertToken(_ token: APIToken) async throws {
        try await write { tx in
            try await tx.run("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)", [
                .text(token.id), .text(token.userID), .text(token.name), .text(token.tokenHash),
                .float(token.createdAt.timeIntervalSince1970), Self.date(token.revokedAt),
            ])
            try await tx.changed(.token, token.tokenHash)
        }
    }

    public func tokens(userID: String?) async throws -> [APIToken] {
        if let userID {
            return try await query("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at", [.text(userID)]).map(Self.token)
        }
        return try await query("SELECT * FROM api_tokens ORDER BY created_at").map(Self.token)
    }

    public func token(hash: String) async throws -> APIToken? {
        try await query("SELECT * FROM api_tokens WHERE token_hash = ?", [.text(hash)]).first.map(Self.token)
    }

    public func revokeToken(id: String, at: Date) async throws -> APIToken {
        try await write { tx in
            let rows = try await tx.run("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? RETURNING *",
                                        [.float(at.timeIntervalSince1970), .text(id)])
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
            let current = try await tx.run("SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1")
                .first?.column("kid")?.string
            guard current == expectedCurrent else { return false }
            try await tx.run("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL", [.float(at.timeIntervalSince1970)])
            try await tx.run("INSERT INTO signing_keys (kid, private_key, created_at, retired_at) VALUES (?, ?, ?, NULL)", [
                .text(key.kid), .blob(ByteBuffer(bytes: key.privateKey)), .float(key.createdAt.timeIntervalSince1970),
            ])
            try await tx.changed(.key, key.kid)
            return true
        }
    }

    public func deleteSigningKeys(retiredBefore: Date) async throws {
        try await write { tx in
            let now = Date()
            for row in try await tx.run("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ? RETURNING *",
                                        [.float(retiredBefore.timeIntervalSince1970)]) {
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
        try await query("SELECT * FROM consents WHERE user_id = ?", [.text(userID)]).first.map(Self.consent)
    }

    public func saveConsent(_ consent: Consent) async throws {
        try await write { tx in
            try await tx.run("""
                INSERT INTO consents (user_id, granted_at, expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT (user_id) DO UPDATE SET granted_at = ?2, expires_at = ?3, revoked_at = ?4
                """, [.text(consent.userID), .float(consent.grantedAt.timeIntervalSince1970), .float(consent.expiresAt.timeIntervalSince1970), Self.date(consent.revokedAt)])
            try await tx.changed(.consent, consent.userID)
        }
    }

    // MARK: impersonation

    public func impersonation(id: String) async throws -> ImpersonationSession? {
        try await query("SELECT * FROM impersonations WHERE id = ?", [.text(id)]).first.flatMap(Self.impersonation)
    }

    public func impersonations(activeOnly: Bool) async throws -> [ImpersonationSession] {
        let sql = activeOnly
            ? "SELECT * FROM impersonations WHERE ended_at IS NULL ORDER BY started_at DESC"
            : "SELECT * FROM impersonations ORDER BY started_at DESC"
        return try await query(sql).compactMap(Self.impersonation)
    }

    public func startImpersonation(_ session: ImpersonationSession) async throws -> Bool {
        try await write { tx in
            let open = try await tx.run("SELECT id FROM impersonations WHERE actor_id = ? AND ended_at IS NULL", [.text(session.actorID)])
            guard open.isEmpty else { return false }
            try await tx.run("""
                INSERT INTO impersonations (id, actor_id, target_id, reason, mode, started_at, expires_at, ended_at, end_reason, sign_in_session)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, Self.binds(session))
            try await tx.changed(.impersonation, session.id)
            return true
        }
    }

    public func impersonations(actorID: String?, targetID: String?, limit: Int) async throws -> [ImpersonationSession] {
        var conditions: [String] = []
        var binds: [SQLiteData] = []
        if let actorID {
            conditions.append("actor_id = ?")
            binds.append(.text(actorID))
        }
        if let targetID {
            conditions.append("target_id = ?")
            binds.append(.text(targetID))
        }
        binds.append(.integer(limit))
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try await query("SELECT * FROM impersonations \(filter) ORDER BY started_at DESC LIMIT ?", binds).compactMap(Self.impersonation)
    }

    public func endImpersonation(id: String, at: Date, reason: EndReason, notice: Bool) async throws -> ImpersonationSession? {
        try await write { tx in
            let rows = try await tx.run("""
                UPDATE impersonations SET ended_at = ?2, end_reason = ?3, notice_pending = ?4
                WHERE id = ?1 AND ended_at IS NULL RETURNING *
                """, [.text(id), .float(at.timeIntervalSince1970), .text(reason.rawValue), .integer(notice ? 1 : 0)])
            guard let row = rows.first else { return nil }
            try await tx.changed(.impersonation, id)
            return Self.impersonation(row)
        }
    }

    public func clearEndNotice(id: String) async throws {
        try await write { tx in
            try await tx.run("UPDATE impersonations SET notice_pending = 0 WHERE id = ?", [.text(id)])
            try await tx.changed(.impersonation, id)
        }
    }

    public func updateImpersonation(_ session: ImpersonationSession) async throws {
        try await write { tx in
            var binds = Self.binds(session)
            binds.append(binds.removeFirst())
            try await tx.run("""
                UPDATE impersonations SET actor_id = ?, target_id = ?, reason = ?, mode = ?, started_at = ?, expires_at = ?, ended_at = ?, end_reason = ?,
                    sign_in_session = ?
                WHERE id = ?
                """, binds)
            try await tx.changed(.impersonation, session.id)
        }
    }

    // MARK: rows

    static func date(_ date: Date?) -> SQLiteData {
        date.map { .float($0.timeIntervalSince1970) } ?? .null
    }

    static func readDate(_ row: SQLiteRow, _ column: String) -> Date? {
        row.column(column)?.double.map { Date(timeIntervalSince1970: $0) }
    }

    static func encodeGroups(_ groups: [String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: groups, options: [.withoutEscapingSlashes])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func decodeGroups(_ text: String?) -> [String] {
        guard let text, let data = text.data(using: .utf8),
              let groups = try? JSONSerialization.jsonObject(with: data) as? [String] else { return [] }
        return groups
    }

    static func user(_ row: SQLiteRow) -> User {
        User(
            id: row.column("id")?.string ?? "",
            username: row.column("username")?.string ?? "",
            email: row.column("email")?.string ?? "",
            name: row.column("name")?.string ?? "",
            role: row.column("role")?.string ?? "",
            groups: decodeGroups(row.column("groups_json")?.string),
            orgUnit: row.column("org_unit")?.string ?? "",
            // An unreadable status fails closed.
            status: row.column("status")?.string.flatMap(User.Status.init(rawValue:)) ?? .suspended,
            lastLogin: readDate(row, "last_login"),
            passwordHash: row.column("password_hash")?.string,
            createdAt: readDate(row, "created_at") ?? Date(timeIntervalSince1970: 0),
            updatedAt: readDate(row, "updated_at") ?? Date(timeIntervalSince1970: 0))
    }

    static func session(_ row: SQLiteRow) -> SignInSession {
        SignInSession(
            idHash: row.column("id_hash")?.string ?? "",
            userID: row.column("user_id")?.string ?? "",
            csrfToken: row.column("csrf_token")?.string ?? "",
            createdAt: readDate(row, "created_at") ?? Date(timeIntervalSince1970: 0),
            expiresAt: readDate(row, "expires_at") ?? Date(timeIntervalSince1970: 0),
            clientIP: row.column("client_ip")?.string ?? "")
    }

    static func token(_ row: SQLiteRow) -> APIToken {
        APIToken(
            id: row.column("id")?.string ?? "",
            userID: row.column("user_id")?.string ?? "",
            name: row.column("name")?.string ?? "",
            tokenHash: row.column("token_hash")?.string ?? "",
            createdAt: readDate(row, "created_at") ?? Date(timeIntervalSince1970: 0),
            revokedAt: readDate(row, "revoked_at"))
    }

    static func signingKey(_ row: SQLiteRow) -> SigningKeyRecord? {
        guard let kid = row.column("kid")?.string, var blob = row.column("private_key")?.blob,
              let bytes = blob.readBytes(length: blob.readableBytes) else { return nil }
        return SigningKeyRecord(kid: kid, privateKey: Data(bytes), createdAt: readDate(row, "created_at") ?? Date(timeIntervalSince1970: 0),
                                retiredAt: readDate(row, "retired_at"))
    }

    static func consent(_ row: SQLiteRow) -> Consent {
        Consent(
            userID: row.column("user_id")?.string ?? "",
            grantedAt: readDate(row, "granted_at") ?? Date(timeIntervalSince1970: 0),
            expiresAt: readDate(row, "expires_at") ?? Date(timeIntervalSince1970: 0),
            revokedAt: readDate(row, "revoked_at"))
    }

    static func impersonation(_ row: SQLiteRow) -> ImpersonationSession? {
        guard let id = row.column("id")?.string, let mode = row.column("mode")?.string.flatMap(ImpersonationMode.init(rawValue:)) else { return nil }
        return ImpersonationSession(
            id: id,
            actorID: row.column("actor_id")?.string ?? "",
            targetID: row.column("target_id")?.string ?? "",
            reason: row.column("reason")?.string ?? "",
            mode: mode,
            startedAt: readDate(row, "started_at") ?? Date(timeIntervalSince1970: 0),
            expiresAt: readDate(row, "expires_at") ?? Date(timeIntervalSince1970: 0),
            endedAt: readDate(row, "ended_at"),
            endReason: row.column("end_reason")?.string.flatMap(EndReason.init(rawValue:)),
            noticePending: (row.column("notice_pending")?.integer ?? 0) != 0,
            signInSession: row.column("sign_in_session")?.string)
    }

    static func binds(_ session: ImpersonationSession) -> [SQLiteData] {
        [
            .text(session.id), .text(session.actorID), .text(session.targetID), .text(session.reason), .text(session.mode.rawValue),
            .float(session.startedAt.timeIntervalSince1970), .float(session.expiresAt.timeIntervalSince1970),
            date(session.endedAt), session.endReason.map { .text($0.rawValue) } ?? .null,
            session.signInSession.map { .text($0) } ?? .null,
        ]
    }
}

/// A FIFO async mutex: the store has one connection, and a transaction's statements must not
/// interleave with another task's.
actor TransactionGate {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        if !locked {
            locked = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func unlock() {
        if waiters.isEmpty {
            locked = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
