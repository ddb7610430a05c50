import ActAsCore
import ActAsCrypto
import Foundation
import ActAsConfig
import ActAsStorePostgres
import Logging
import PostgresNIO
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

/// The stores every contract test runs against: SQLite always, PostgreSQL when
/// `ACTAS_TEST_POSTGRES_URL` names a server (scripts/test always starts one).
enum StoreKind: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    static let all: [StoreKind] = postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]

    static let postgresURL: PostgresURL? = ProcessInfo.processInfo.environment["ACTAS_TEST_POSTGRES_URL"]
        .flatMap { try? PostgresURL.parse($0).get() }

    var testDescription: String { rawValue }
}

/// A fresh, empty database: a file in its own folder, or a new PostgreSQL database.
struct TestDatabase: Sendable {
    let kind: StoreKind
    let path: String
    let endpoint: PostgresEndpoint?

    static func create(_ kind: StoreKind) async throws -> TestDatabase {
        switch kind {
        case .sqlite:
            return TestDatabase(kind: kind, path: freshDatabasePath(), endpoint: nil)
        case .postgres:
            let admin = PostgresEndpoint(try #require(StoreKind.postgresURL))
            let name = "actas_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            try await Self.onServer(admin) { try await $0.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: testLogger) }
            var endpoint = admin
            endpoint.database = name
            return TestDatabase(kind: kind, path: name, endpoint: endpoint)
        }
    }

    /// A new connection (a new "process") to this database; not migrated. The contract tests
    /// are about what a store answers, not how fast: with the whole suite running on two cores
    /// a query can wait in the pool for longer than the product's 3 s limit.
    func open() async throws -> any Store {
        switch kind {
        case .sqlite: return try await SQLiteStore.open(path: path)
        case .postgres:
            return try await PostgresStore.open(endpoint!, poolSize: 3, applicationName: "actas-tests", operationLimit: .seconds(60))
        }
    }

    func drop() async {
        switch kind {
        case .sqlite:
            removeDatabase(path)
        case .postgres:
            var admin = endpoint!
            admin.database = StoreKind.postgresURL!.database
            try? await Self.onServer(admin) { try await $0.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(path) WITH (FORCE)"), logger: testLogger) }
        }
    }

    static func onServer(_ endpoint: PostgresEndpoint, _ body: (PostgresConnection) async throws -> Void) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: endpoint.connectionConfiguration(applicationName: "actas-tests"), id: 1, logger: testLogger)
        do {
            try await body(connection)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

let testLogger = Logger(label: "actas.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// Opens and migrates a store on a fresh database, runs `body`, closes and deletes it.
func withStore<T>(_ kind: StoreKind = .sqlite, _ body: (any Store) async throws -> T) async throws -> T {
    let database = try await TestDatabase.create(kind)
    let store: any Store
    do {
        store = try await database.open()
    } catch {
        await database.drop()
        throw error
    }
    do {
        try await store.migrate()
        let result = try await body(store)
        await store.close()
        await database.drop()
        return result
    } catch {
        await store.close()
        await database.drop()
        throw error
    }
}

/// Two connections to one database, like the server and an `actas` command in another process
/// (or two instances). The third argument names the database (a file path for SQLite).
func withTwoStores<T>(_ kind: StoreKind = .sqlite, migrate: Bool = true, _ body: (any Store, any Store, String) async throws -> T) async throws -> T {
    let database = try await TestDatabase.create(kind)
    let first: any Store
    let second: any Store
    do {
        first = try await database.open()
    } catch {
        await database.drop()
        throw error
    }
    do {
        second = try await database.open()
    } catch {
        await first.close()
        await database.drop()
        throw error
    }
    do {
        if migrate {
            try await first.migrate()
            try await second.migrate()
        }
        let result = try await body(first, second, database.path)
        await first.close()
        await second.close()
        await database.drop()
        return result
    } catch {
        await first.close()
        await second.close()
        await database.drop()
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
func feedPosition(_ store: any Store) async throws -> Int64 {
    try await store.snapshot(now: t0).changeID
}

func changes(_ store: any Store, after id: Int64) async throws -> [Change] {
    try #require(try await store.changes(after: id, limit: 10_000))
}
