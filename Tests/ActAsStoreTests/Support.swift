import ActAsCore
import ActAsCrypto
import Foundation
import Testing
@testable import ActAsStore

/// A fixed clock for everything the tests decide; the store's own change timestamps are real.
let t0 = Date(timeIntervalSince1970: 1_800_000_000)

let roles = ["owner", "super_admin", "hr_admin", "manager", "employee"]

/// Cheap scrypt: every real hash in a debug build costs ~0.4 s at the standard cost.
let fastHasher = PasswordHasher(logN: 10, blockSize: 8, parallelism: 1)

/// A fresh database path in its own folder under the temporary directory.
func freshDatabasePath() -> String {
    FileManager.default.temporaryDirectory
        .appendingPathComponent("actas-store-tests-\(UUID().uuidString)", isDirectory: true)
        .appendingPathComponent("actas.db").path
}

func removeDatabase(_ path: String) {
    try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
}

/// Opens and migrates a store on a fresh file, runs `body`, closes and deletes it.
func withStore<T>(_ body: (SQLiteStore) async throws -> T) async throws -> T {
    let path = freshDatabasePath()
    let store = try await SQLiteStore.open(path: path)
    do {
        try await store.migrate()
        let result = try await body(store)
        await store.close()
        removeDatabase(path)
        return result
    } catch {
        await store.close()
        removeDatabase(path)
        throw error
    }
}

/// Two connections to one file, like the server and an `actas` command in another process.
func withTwoStores<T>(migrate: Bool = true, _ body: (SQLiteStore, SQLiteStore, String) async throws -> T) async throws -> T {
    let path = freshDatabasePath()
    let first = try await SQLiteStore.open(path: path)
    let second: SQLiteStore
    do {
        second = try await SQLiteStore.open(path: path)
    } catch {
        await first.close()
        removeDatabase(path)
        throw error
    }
    do {
        if migrate {
            try await first.migrate()
            try await second.migrate()
        }
        let result = try await body(first, second, path)
        await first.close()
        await second.close()
        removeDatabase(path)
        return result
    } catch {
        await first.close()
        await second.close()
        removeDatabase(path)
        throw error
    }
}

func makeUser(_ username: String, id: String? = nil, role: String = "employee", status: User.Status = .active,
              email: String? = nil, groups: [String] = [], orgUnit: String = "acme/emea", passwordHash: String? = nil) -> User {
    User(id: id ?? "usr_\(username)", username: username, email: email ?? "\(username)@example.com", name: username.capitalized,
         role: role, groups: groups, orgUnit: orgUnit, status: status, lastLogin: nil, passwordHash: passwordHash,
         createdAt: t0, updatedAt: t0)
}

func makeSession(for user: User, cookie: String = Secrets.sessionToken(), expires: Date = t0 + 3600) -> (cookie: String, session: SignInSession) {
    (cookie, SignInSession(idHash: Secrets.hash(cookie), userID: user.id, csrfToken: Secrets.csrfToken(),
                           createdAt: t0, expiresAt: expires, clientIP: "192.0.2.1"))
}

func makeToken(for user: User, id: String = Secrets.identifier(prefix: "tok_"), created: Date = t0) -> (token: String, record: APIToken) {
    let token = Secrets.apiToken()
    return (token, APIToken(id: id, userID: user.id, name: "ci", tokenHash: Secrets.hash(token), createdAt: created))
}

func makeKey(created: Date, retired: Date? = nil) -> SigningKeyRecord {
    let (raw, key) = AssertionKey.generate()
    return SigningKeyRecord(kid: key.kid, privateKey: raw, createdAt: created, retiredAt: retired)
}

func makeImpersonation(id: String = Secrets.identifier(prefix: "imp_"), actor: String, target: String,
                       ended: Date? = nil) -> ImpersonationSession {
    ImpersonationSession(id: id, actorID: actor, targetID: target, reason: "ticket 4711: broken invoice", mode: .readOnly,
                         startedAt: t0, expiresAt: t0 + 3600, endedAt: ended, endReason: ended == nil ? nil : .exit)
}

/// The newest change id (0 for an empty feed).
func feedPosition(_ store: SQLiteStore) async throws -> Int64 {
    try await store.snapshot(now: t0).changeID
}

func changes(_ store: SQLiteStore, after id: Int64) async throws -> [Change] {
    try #require(try await store.changes(after: id, limit: 10_000))
}
