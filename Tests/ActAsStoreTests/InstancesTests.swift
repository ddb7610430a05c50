import ActAsCore
import Foundation
import Testing
@testable import ActAsStore

@Suite("Running instances (SPEC §10.1)")
struct InstancesTests {
    // MARK: the instances table

    @Test(arguments: StoreKind.all) func registerTouchAndRemove(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let started = t0
            try await store.registerInstance(InstanceRecord(id: "web1:9901", adminAddress: "127.0.0.1:9901", startedAt: started, lastSeen: started))
            try await store.registerInstance(InstanceRecord(id: "web2:9901", adminAddress: "[::1]:9901", startedAt: started, lastSeen: started))
            #expect(try await store.instances().map(\.id) == ["web1:9901", "web2:9901"])

            #expect(try await store.touchInstance(id: "web1:9901", startedAt: started, at: t0 + 2))
            #expect(try await store.instances().first?.lastSeen == t0 + 2)
            // A later process with the same id replaced the row: the old one's heartbeat and
            // clean stop leave it alone.
            #expect(try await !store.touchInstance(id: "web1:9901", startedAt: t0 - 60, at: t0 + 4))
            try await store.removeInstance(id: "web1:9901", startedAt: t0 - 60)
            #expect(try await store.instances().count == 2)

            try await store.removeInstance(id: "web1:9901", startedAt: started)
            #expect(try await store.instances().map(\.id) == ["web2:9901"])
            #expect(try await !store.touchInstance(id: "web1:9901", startedAt: started, at: t0 + 6))

            try await store.forgetInstances(lastSeenBefore: t0 + 1)
            #expect(try await store.instances().isEmpty)
        }
    }

    @Test(arguments: StoreKind.all) func latestChangeIDFollowsWrites(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            #expect(try await store.latestChangeID() == 0)
            try await store.saveUsers([makeUser("alice")])
            let first = try await store.latestChangeID()
            #expect(first > 0)
            try await store.saveUsers([makeUser("bob")])
            #expect(try await store.latestChangeID() > first)
        }
    }

    /// What `POST /sync?change=N` runs: another process's write is applied before it returns.
    @Test func catchUpAppliesAnotherProcesssChangeAtOnce() async throws {
        let path = freshDatabasePath()
        defer { removeDatabase(path) }
        let server = try await SQLiteStore.open(path: path)
        try await server.migrate()
        let command = try await SQLiteStore.open(path: path)
        let live = LiveState()
        let sync = StateSync(store: server, state: live)
        try await sync.loadSnapshot()

        try await command.saveUsers([makeUser("alice")])
        let change = try await command.latestChangeID()
        #expect(live.read { $0.users["usr_alice"] } == nil)
        #expect(try await sync.catchUp(to: change) >= change)
        #expect(live.read { $0.users["usr_alice"]?.status } == .active)
        #expect(await sync.appliedChange == change)

        // A position the store has not reached yet is reported, not waited for.
        #expect(try await sync.catchUp(to: change + 10) == change)
        await command.close()
        await server.close()
    }

    @Test func concurrentCatchUpsApplyEachChangeOnce() async throws {
        let path = freshDatabasePath()
        defer { removeDatabase(path) }
        let server = try await SQLiteStore.open(path: path)
        try await server.migrate()
        try await server.saveUsers([makeUser("admin", role: "super_admin"), makeUser("emp")])
        let session = ImpersonationSession(
            id: "imp_1", actorID: "usr_admin", targetID: "usr_emp", reason: "ticket", mode: .readWrite,
            startedAt: Date(), expiresAt: Date() + 3600)
        #expect(try await server.startImpersonation(session))
        let ends = Counter()
        let live = LiveState()
        let sync = StateSync(store: server, state: live, onImpersonationEnded: { _ in ends.add() })
        try await sync.loadSnapshot()
        _ = try await server.endImpersonation(id: "imp_1", at: Date(), reason: .endedByOperator, notice: true)
        let change = try await server.latestChangeID()
        try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<8 { group.addTask { try await sync.catchUp(to: change) } }
            group.addTask { _ = try await sync.poll(); return change }
            for try await reached in group { #expect(reached >= change) }
        }
        #expect(ends.value == 1)
        await server.close()
    }

    // MARK: pure parts

    @Test func instanceIDDefaultsToHostAndAdminPort() {
        #expect(InstanceRecord.resolveID(configured: "", hostName: "web1", adminPort: 9901) == "web1:9901")
        #expect(InstanceRecord.resolveID(configured: "", hostName: "web1", adminPort: nil) == "web1")
        #expect(InstanceRecord.resolveID(configured: "eu-1", hostName: "web1", adminPort: 9901) == "eu-1")
    }

    @Test func adminAddresses() {
        #expect(InstanceRecord.address(host: "127.0.0.1", port: 9901) == "127.0.0.1:9901")
        #expect(InstanceRecord.address(host: "::1", port: 9901) == "[::1]:9901")
        #expect(InstanceRecord.parseAddress("127.0.0.1:9901")! == ("127.0.0.1", 9901))
        #expect(InstanceRecord.parseAddress("[::1]:9901")! == ("::1", 9901))
        for bad in ["", "127.0.0.1", "::1:9901", "[::1]", "[::1]9901", "host:0", "host:65536", "host:9x", ":9901", "[]:1"] {
            #expect(InstanceRecord.parseAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func staleAfterThreeMissedHeartbeats() {
        let record = InstanceRecord(id: "a", adminAddress: "127.0.0.1:1", startedAt: t0, lastSeen: t0)
        #expect(!record.isStale(now: t0 + InstanceRecord.staleAfter))
        #expect(record.isStale(now: t0 + InstanceRecord.staleAfter + 0.001))
    }

    @Test func syncQueryTakesOneDecimalChange() {
        #expect(syncTargetChange(query: "change=42") == 42)
        #expect(syncTargetChange(query: "x=1&change=0") == 0)
        for bad in ["", "change=", "change=-1", "change=1e3", "change=+1", "change=٣", "change=1&change=2",
                    "change=9999999999999999999", "change"] {
            #expect(syncTargetChange(query: Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test func acknowledgementRoundTrip() {
        let ack = SyncAcknowledgement(instanceID: "we\"b\n1:9901", change: 17)
        let response = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n\(ack.body)".utf8)
        #expect(SyncAcknowledgement.parse(response: response) == ack)
        let conflict = Array("HTTP/1.1 409 Conflict\r\n\r\n\(ack.body)".utf8)
        #expect(SyncAcknowledgement.parse(response: conflict) == nil)
        #expect(SyncAcknowledgement.statusLine(response: conflict) == "HTTP/1.1 409 Conflict")
        #expect(SyncAcknowledgement.parse(response: Array("HTTP/1.1 200 OK\r\n\r\n{\"instance\":\"a\",\"change\":1.5}".utf8)) == nil)
        #expect(SyncAcknowledgement.parse(response: Array("garbage".utf8)) == nil)
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
