import ActAsCore
import Foundation
import Testing
@testable import ActAsStore

@Suite("SQLite store: audit checkpoints")
struct CheckpointStoreTests {
    private func checkpoint(_ instance: String, seq: UInt64, covers: UInt64? = nil) -> AuditCheckpoint {
        AuditCheckpoint(seq: seq, covers: covers ?? seq - 1, head: String(repeating: "0f", count: 32), instance: instance,
                        kid: "kid-\(seq)", sig: "sig-\(seq)", timestamp: t0 + Double(seq))
    }

    @Test func keepsTheLatestCheckpointPerInstance() async throws {
        try await withStore { store in
            #expect(try await store.latestCheckpoint(instance: "a") == nil)
            try await store.saveCheckpoint(checkpoint("a", seq: 1001))
            try await store.saveCheckpoint(checkpoint("b", seq: 5000))
            try await store.saveCheckpoint(checkpoint("a", seq: 2002))
            // Stored out of order (a retry after a store outage): the highest seq wins.
            try await store.saveCheckpoint(checkpoint("a", seq: 1500))
            #expect(try await store.latestCheckpoint(instance: "a") == checkpoint("a", seq: 2002))
            #expect(try await store.latestCheckpoint(instance: "b") == checkpoint("b", seq: 5000))
            #expect(try await store.latestCheckpoint(instance: "c") == nil)
        }
    }

    @Test func savingTheSameCheckpointAgainReplacesIt() async throws {
        try await withStore { store in
            try await store.saveCheckpoint(checkpoint("a", seq: 10))
            var again = checkpoint("a", seq: 10, covers: 9)
            again.sig = "resigned"
            try await store.saveCheckpoint(again)
            #expect(try await store.latestCheckpoint(instance: "a") == again)
        }
    }

    @Test func survivesReopeningTheFile() async throws {
        let path = freshDatabasePath()
        defer { removeDatabase(path) }
        let first = try await SQLiteStore.open(path: path)
        try await first.migrate()
        try await first.saveCheckpoint(checkpoint("edge", seq: 77))
        await first.close()
        let second = try await SQLiteStore.open(path: path)
        try await second.migrate()
        #expect(try await second.latestCheckpoint(instance: "edge") == checkpoint("edge", seq: 77))
        await second.close()
    }
}
