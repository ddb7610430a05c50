import ActAsCore
import Foundation
import PostgresNIO
import SQLiteNIO
import Testing
@testable import ActAsStore

@Suite("Store: session records of several instances")
struct SessionAuditInstanceTests {
    static func line(_ instance: String, _ seq: Int64, _ path: String) -> String {
        #"{"seq":\#(seq),"type":"request","instance":"\#(instance)","path":"\#(path)"}"#
    }

    static func record(_ session: String, _ instance: String, _ seq: Int64, at time: Date, _ path: String) -> SessionAuditLine {
        SessionAuditLine(sessionID: session, instance: instance, seq: seq, timestamp: time, line: line(instance, seq, path))
    }

    // Each instance numbers its own log (SPEC §10.2): one session served by two instances
    // has two records with seq 1.
    @Test(arguments: StoreKind.all) func sameSeqFromTwoInstancesKeepsBoth(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let a1 = Self.record("imp_x", "node-a", 1, at: t0 + 1, "/a1")
            let b1 = Self.record("imp_x", "node-b", 1, at: t0 + 2, "/b1")
            let a2 = Self.record("imp_x", "node-a", 2, at: t0 + 3, "/a2")
            try await store.appendSessionAudit([a1, a2])
            try await store.appendSessionAudit([b1, a1])  // a retried copy of a1 stays one row
            let lines = try await store.sessionAudit(sessionID: "imp_x")
            #expect(lines == [a1, b1, a2])
        }
    }

    // Same time: instance, then seq, so every read gives the same order.
    @Test(arguments: StoreKind.all) func sameTimeOrdersByInstanceThenSeq(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let lines = [("node-b", 2), ("node-a", 2), ("node-b", 1), ("node-a", 1)].map { instance, seq in
                Self.record("imp_y", instance, Int64(seq), at: t0, "/")
            }
            try await store.appendSessionAudit(lines)
            let read = try await store.sessionAudit(sessionID: "imp_y")
            #expect(read.map { "\($0.instance):\($0.seq)" } == ["node-a:1", "node-a:2", "node-b:1", "node-b:2"])
        }
    }

    // A version-10 database (session_audit keyed by session and seq) with a row: migration 11
    // keeps the row and gives it the instance its line names.
    @Test func migrationElevenKeepsOldRowsWithTheirInstance() async throws {
        let path = freshDatabasePath()
        defer { removeDatabase(path) }
        let old = try await SQLiteStore.open(path: path)
        try await old.write { tx in
            try await tx.run("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            for migration in SQLiteStore.migrations where migration.version <= 10 {
                for statement in migration.statements { try await tx.run(statement) }
                try await tx.run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)", [.integer(migration.version)])
            }
            try await tx.run("INSERT INTO session_audit (session_id, seq, ts, line) VALUES (?, ?, ?, ?)",
                             [.text("imp_old"), .integer(7), .float(t0.timeIntervalSince1970), .text(Self.line("node-a", 7, "/old"))])
            try await tx.run("INSERT INTO session_audit (session_id, seq, ts, line) VALUES (?, ?, ?, ?)",
                             [.text("imp_old"), .integer(8), .float(t0.timeIntervalSince1970 + 1), .text("damaged")])
        }
        await old.close()

        let store = try await SQLiteStore.open(path: path)
        try await store.migrate()
        let before = try await store.sessionAudit(sessionID: "imp_old")
        #expect(before.map(\.instance) == ["node-a", ""])
        #expect(before.map(\.seq) == [7, 8])
        #expect(before.first?.line == Self.line("node-a", 7, "/old"))
        // The new key: another instance's seq 7 is kept beside the old row.
        let other = Self.record("imp_old", "node-b", 7, at: t0 + 2, "/new")
        try await store.appendSessionAudit([other])
        #expect(try await store.sessionAudit(sessionID: "imp_old").map(\.instance) == ["node-a", "", "node-b"])
        await store.close()
    }

    // PostgreSQL: a migrated database whose session_audit is put back as version 10 had it
    // (only migration 11 touches it), with a row; migrating again keeps the row.
    @Test func postgresMigrationElevenKeepsOldRowsWithTheirInstance() async throws {
        guard StoreKind.all.contains(.postgres) else { return }
        let database = try await TestDatabase.create(.postgres)
        do {
            try await Self.migrateFromVersionTen(database)
        } catch {
            await database.drop()
            throw error
        }
        await database.drop()
    }

    static func migrateFromVersionTen(_ database: TestDatabase) async throws {
        let fresh = try await database.open()
        try await fresh.migrate()
        await fresh.close()
        let oldLine = line("node-a", 7, "/old")
        // A logged NUL (as the log escapes it) in another old line: the migration must not trip on it.
        let nulLine = #"{"seq":8,"type":"request","path":"/a\u0000b","instance":"node-a"}"#
        try await TestDatabase.onServer(database.endpoint!) { connection in
            for sql in [
                "DROP TABLE session_audit",
                """
                CREATE TABLE session_audit (session_id TEXT NOT NULL, seq BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL,
                                            line TEXT NOT NULL, PRIMARY KEY (session_id, seq))
                """,
                "DELETE FROM schema_migrations WHERE version = 11",
            ] {
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: testLogger)
            }
            try await connection.query("INSERT INTO session_audit (session_id, seq, ts, line) VALUES ('imp_old', 7, \(t0.timeIntervalSince1970), \(oldLine))",
                                       logger: testLogger)
            try await connection.query("INSERT INTO session_audit (session_id, seq, ts, line) VALUES ('imp_nul', 8, \(t0.timeIntervalSince1970), \(nulLine))",
                                       logger: testLogger)
        }
        let store = try await database.open()
        try await store.migrate()
        let other = record("imp_old", "node-b", 7, at: t0 + 2, "/new")
        try await store.appendSessionAudit([other])
        let lines = try await store.sessionAudit(sessionID: "imp_old")
        await store.close()
        #expect(lines == [SessionAuditLine(sessionID: "imp_old", instance: "node-a", seq: 7, timestamp: t0, line: oldLine), other])
        let store2 = try await database.open()
        #expect(try await store2.sessionAudit(sessionID: "imp_nul").map(\.instance) == ["node-a"])
        await store2.close()
    }
}
