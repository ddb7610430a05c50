import ActAsConfig
import ActAsCore
import ActAsStorePostgres
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing
@testable import ActAsStore

/// What only the PostgreSQL store has: concurrent migrations across instances, TLS, the
/// NOTIFY wake-up, the feed's commit order. Runs when ACTAS_TEST_POSTGRES_URL is set.
@Suite("PostgreSQL store", .enabled(if: StoreKind.postgresURL != nil))
struct PostgresStoreTests {
    @Test func fourInstancesMigratingAnEmptyDatabaseAtOnceApplyEachVersionOnce() async throws {
        let database = try await TestDatabase.create(.postgres)
        defer { Task { await database.drop() } }
        var stores: [PostgresStore] = []
        for _ in 0..<4 { stores.append(try #require(try await database.open() as? PostgresStore)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for store in stores { group.addTask { try await store.migrate() } }
            try await group.waitForAll()
        }
        // The same versions as SQLite's (the rule for both stores), each applied once.
        #expect(try await stores[0].appliedMigrations() == SQLiteStore.migrations.map(\.version))
        try await stores[1].saveUsers([makeUser("alice")])
        #expect(try await stores[3].users().map(\.username) == ["alice"])
        for store in stores { await store.close() }
    }

    @Test func sslmodeRequireEncryptsTheConnection() async throws {
        var endpoint = PostgresEndpoint(try #require(StoreKind.postgresURL))
        endpoint.tls = .require
        let store = try await PostgresStore.open(endpoint, poolSize: 1, applicationName: "actas-tests-tls")
        await store.close()
        try await TestDatabase.onServer(endpoint) { connection in
            let rows = try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: testLogger).collect()
            #expect(try rows.first?.decode(Bool.self) == true)
        }
    }

    @Test func aWrongDatabaseNameIsUnavailableWithTheServersReason() async throws {
        var endpoint = PostgresEndpoint(try #require(StoreKind.postgresURL))
        endpoint.database = "no_such_database_\(UUID().uuidString.prefix(8))"
        await #expect(throws: StoreError.self) { _ = try await PostgresStore.open(endpoint) }
        do {
            _ = try await PostgresStore.open(endpoint)
        } catch {
            #expect("\(error)".contains("does not exist"), "\(error)")
        }
    }

    @Test func aChangeCommittedByAnotherInstanceRingsTheListener() async throws {
        try await withTwoStores(.postgres) { first, second, _ in
            let listening = try #require(first as? PostgresStore)
            let rings = Mutex(0)
            let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
            let listener = ChangeListener(store: listening, applicationName: "actas listen tests", logger: testLogger)
            let task = Task {
                await listener.run {
                    rings.withLock { $0 += 1 }
                    continuation.yield()
                }
            }
            var iterator = stream.makeAsyncIterator()
            _ = await iterator.next()  // the resynchronising ring after connecting
            try await second.saveUsers([makeUser("alice")])
            _ = await iterator.next()
            #expect(rings.withLock { $0 } >= 2)
            task.cancel()
            await task.value
        }
    }

    /// Writers on two instances interleaving: a reader polling meanwhile sees change ids only
    /// ever growing by commit, never a later id before an earlier one committed.
    @Test func theFeedNeverSkipsAChangeUnderConcurrentWriters() async throws {
        try await withTwoStores(.postgres) { first, second, _ in
            try await first.saveUsers((0..<20).map { makeUser("user\($0)") })
            let start = try await first.latestChangeID()
            let done = DoneFlag()
            let writers = Task {
                defer { done.set() }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { for i in 0..<20 { try await first.saveConsent(Consent(userID: "usr_user\(i)", grantedAt: t0, expiresAt: t0 + 60)) } }
                    group.addTask { for i in 0..<20 { try await second.saveConsent(Consent(userID: "usr_user\(i)", grantedAt: t0, expiresAt: t0 + 120)) } }
                    try await group.waitForAll()
                }
            }
            var position = start
            var seen: [Int64] = []
            func read() async throws -> Int {
                let batch = try #require(try await second.changes(after: position, limit: 7))
                for change in batch {
                    seen.append(change.id)
                    position = change.id
                }
                return batch.count
            }
            // Reading while both instances commit; a change skipped here is never read later.
            while !done.isSet {
                if try await read() == 0 { await Task.yield() }
            }
            try await writers.value
            while try await read() > 0 {}
            let all = try #require(try await first.changes(after: start, limit: 1000)).map(\.id)
            #expect(seen == all)
        }
    }
}

final class DoneFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
