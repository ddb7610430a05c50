import ActAsCore
import Foundation
import Testing
@testable import ActAsStore

@Suite("Store: session audit copies in bulk")
struct SessionAuditBatchTests {
    // More lines than one statement takes in either store (250 SQLite, 1000 PostgreSQL).
    @Test(arguments: StoreKind.all) func manyLinesAtOnceKeepEveryLineOnceInOrder(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let lines = (1...2001).map { seq in
                SessionAuditLine(sessionID: seq % 2 == 0 ? "imp_a" : "imp_b", instance: "node-a", seq: Int64(seq), timestamp: t0 + Double(seq),
                                 line: "{\"seq\":\(seq),\"note\":\"it's \\\"quoted\\\"\"}")
            }
            try await store.appendSessionAudit(lines)
            // The same records again (a retried copy) and one new one: nothing doubles.
            try await store.appendSessionAudit(Array(lines[1990...]) + [
                SessionAuditLine(sessionID: "imp_a", instance: "node-a", seq: 2002, timestamp: t0 + 2002, line: "{\"seq\":2002}")])
            let a = try await store.sessionAudit(sessionID: "imp_a")
            let b = try await store.sessionAudit(sessionID: "imp_b")
            #expect(a.map(\.seq) == Array(stride(from: 2, through: 2002, by: 2)))
            #expect(b.map(\.seq) == Array(stride(from: 1, through: 2001, by: 2)))
            #expect(a.first == lines[1])
            #expect(b.last == lines[2000])
        }
    }
}
