import ActAsCore
import ActAsCrypto
import Foundation
import Testing
@testable import ActAsStore

/// Several connections on one file, standing in for the server and `actas` commands running
/// as separate processes. Serialized: in one test process every SQLiteStore shares
/// NIOThreadPool.singleton, and a connection waiting on SQLite's busy handler holds one of its
/// threads (see `storesOutnumberingThePoolThreadsDoNotDeadlock`).
@Suite("Two processes, one SQLite file", .serialized)
struct TwoProcessTests {
    /// Two processes starting at once on a brand-new file: both open (WAL switch), both
    /// migrate; the loser of the race must see the schema as applied, not apply it again.
    @Test(arguments: 0..<3)
    func twoStoresMigratingConcurrentlyOnAFreshFile(round: Int) async throws {
        let path = freshDatabasePath()
        defer { removeDatabase(path) }
        async let openA = SQLiteStore.open(path: path)
        async let openB = SQLiteStore.open(path: path)
        let (a, b) = try await (openA, openB)
        do {
            async let migrateA: Void = a.migrate()
            async let migrateB: Void = b.migrate()
            _ = try await (migrateA, migrateB)
            try await a.saveUsers([makeUser("alice")])
            try await b.saveUsers([makeUser("bob")])
            #expect(try await a.users().map(\.username) == ["alice", "bob"])
            try await a.checkSchemaVersion()
            try await b.migrate()
        } catch {
            await a.close()
            await b.close()
            throw error
        }
        await a.close()
        await b.close()
    }

    @Test(arguments: StoreKind.all, 0..<3)
    func ensureSigningKeyFromTwoProcessesAtOnceMakesOneKey(kind: StoreKind, round: Int) async throws {
        try await withTwoStores(kind) { a, b, _ in
            async let one: Void = KeyManager.ensureSigningKey(a, now: t0)
            async let two: Void = KeyManager.ensureSigningKey(b, now: t0)
            async let three: Void = KeyManager.ensureSigningKey(a, now: t0)
            _ = try await (one, two, three)
            let keys = try await a.signingKeys()
            #expect(keys.filter { $0.retiredAt == nil }.count == 1)
            #expect(keys.count == 1)
            try await KeyManager.ensureSigningKey(b, now: t0 + 5)
            #expect(try await b.signingKeys().count == 1)
        }
    }

    @Test(arguments: StoreKind.all) func concurrentRotationsLeaveExactlyOneCurrentKey(kind: StoreKind) async throws {
        try await withTwoStores(kind) { a, b, _ in
            try await KeyManager.ensureSigningKey(a, now: t0)
            async let r1 = KeyManager.rotate(a, now: t0 + 1)
            async let r2 = KeyManager.rotate(b, now: t0 + 2)
            let (one, two) = try await (r1, r2)
            #expect(one.new != two.new)
            let keys = try await a.signingKeys()
            #expect(keys.count == 3)
            #expect(keys.filter { $0.retiredAt == nil }.count == 1)
        }
    }

    @Test(arguments: StoreKind.all) func concurrentStartsFromTwoProcessesLetOneWin(kind: StoreKind) async throws {
        try await withTwoStores(kind) { a, b, _ in
            async let one = a.startImpersonation(makeImpersonation(actor: "usr_admin", target: "usr_x"))
            async let two = b.startImpersonation(makeImpersonation(actor: "usr_admin", target: "usr_y"))
            let results = try await [one, two]
            #expect(results.filter { $0 }.count == 1)
            #expect(try await a.impersonations(activeOnly: true).count == 1)
        }
    }

    @Test(arguments: StoreKind.all) func writesFromTwoProcessesInterleave(kind: StoreKind) async throws {
        try await withTwoStores(kind) { a, b, _ in
            let alice = makeUser("alice")
            try await a.saveUsers([alice])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 {
                    group.addTask { try await a.insertToken(makeToken(for: alice, created: t0 + Double(index)).record) }
                    group.addTask { try await b.insertToken(makeToken(for: alice, created: t0 + Double(index)).record) }
                }
                try await group.waitForAll()
            }
            #expect(try await b.tokens(userID: nil).count == 40)
            let feed = try await changes(b, after: 0)
            #expect(feed.count == 41)
            #expect(feed.map(\.id) == feed.map(\.id).sorted())
        }
    }

    /// BUG: every SQLiteStore runs its statements on NIOThreadPool.singleton (one thread per
    /// core), and `BEGIN IMMEDIATE` waiting in SQLite's busy handler blocks a pool thread for
    /// up to busy_timeout (10 s). With more connections than pool threads in one process, the
    /// waiters occupy every thread, the lock holder cannot run its next statement (or COMMIT),
    /// and everyone fails after 10 s with "database is locked". The same busy waits also starve
    /// everything else on the singleton pool (scrypt for every sign-in) while another process
    /// writes. Fix: a dedicated one-thread NIOThreadPool per SQLiteStore (its one connection
    /// serialises statements anyway), shut down in close().
    @Test func storesOutnumberingThePoolThreadsDoNotDeadlock() async throws {
        let path = freshDatabasePath()
        defer { removeDatabase(path) }
        let count = ProcessInfo.processInfo.activeProcessorCount + 2
        let first = try await SQLiteStore.open(path: path)
        try await first.migrate()
        let alice = makeUser("alice")
        try await first.saveUsers([alice])
        var stores = [first]
        for _ in 1..<count { stores.append(try await SQLiteStore.open(path: path)) }
        let started = ContinuousClock.now
        let outcome: Result<Void, any Error>
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores {
                    group.addTask { try await store.insertToken(makeToken(for: alice, created: t0).record) }
                }
                try await group.waitForAll()
            }
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        let elapsed = ContinuousClock.now - started
        let tokens = try await first.tokens(userID: nil).count
        for store in stores { await store.close() }
        #expect(throws: Never.self) { try outcome.get() }
        #expect(tokens == count)
        #expect(elapsed < .seconds(5))
    }
}
