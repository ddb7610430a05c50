import ActAsCore
import Foundation
import Testing
@testable import ActAsStore

@Suite("SQLite store: session audit copies in bulk")
struct SessionAuditBatchTests {
    @Test func manyLinesAtOnceKeepEveryLineOnceInOrder() async throws {
        try await withStore { store in
            let lines = (1...601).map { seq in
                SessionAuditLine(sessionID: seq % 2 == 0 ? "imp_a" : "imp_b", seq: Int64(seq), timestamp: t0 + Double(seq),
                                 line: "{\"seq\":\(seq),\"note\":\"it's \\\"quoted\\\"\"}")
            }
            try await store.appendSessionAudit(lines)
            // The same records again (a retried copy) and one new one: nothing doubles.
            try await store.appendSessionAudit(Array(lines[590...]) + [
                SessionAuditLine(sessionID: "imp_a", seq: 602, timestamp: t0 + 602, line: "{\"seq\":602}")])
            let a = try await store.sessionAudit(sessionID: "imp_a")
            let b = try await store.sessionAudit(sessionID: "imp_b")
            #expect(a.map(\.seq) == Array(stride(from: 2, through: 602, by: 2)))
            #expect(b.map(\.seq) == Array(stride(from: 1, through: 601, by: 2)))
            #expect(a.first == lines[1])
            #expect(b.last == lines[600])
        }
    }
}
