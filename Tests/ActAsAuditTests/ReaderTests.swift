import Foundation
import Testing

@testable import ActAsAudit

@Suite struct ReaderTests {
    @Test func filtersBySessionUserImpersonatorTypeAndTime() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let writer = try AuditWriter(configuration: AuditWriterConfiguration(destination: .file(path), redactor: defaultRedactor))
        let base: Int64 = 1_793_960_000_000
        let records = [
            AuditRecord(type: .login, timestamp: AuditTimestamp(millisecondsSinceEpoch: base), user: "admin", authMethod: "password"),
            AuditRecord(type: .impersonationStarted, timestamp: AuditTimestamp(millisecondsSinceEpoch: base + 1000),
                        user: "jdoe", impersonator: "admin", sessionID: "imp_1", mode: .readOnly, justification: "ticket 42 VISIBLE"),
            AuditRecord(type: .request, timestamp: AuditTimestamp(millisecondsSinceEpoch: base + 2000), method: "GET",
                        path: "/a", status: 200, user: "jdoe", impersonator: "admin", sessionID: "imp_1"),
            AuditRecord(type: .request, timestamp: AuditTimestamp(millisecondsSinceEpoch: base + 3000), method: "GET",
                        path: "/b", status: 200, user: "other"),
            AuditRecord(type: .consentRevoked, timestamp: AuditTimestamp(millisecondsSinceEpoch: base + 4000), user: "jdoe", actor: "operator"),
            AuditRecord(type: .impersonationEnded, timestamp: AuditTimestamp(millisecondsSinceEpoch: base + 5000),
                        user: "jdoe", impersonator: "admin", sessionID: "imp_1", endReason: .consentRevoked),
        ]
        for record in records { #expect(writer.append(record)) }
        writer.close()
        // A torn line at the end is skipped by the reader.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"ts\":".utf8))
        handle.closeFile()

        func select(_ filter: AuditLogFilter) throws -> [UInt64] {
            var seqs: [UInt64] = []
            try AuditLogReader.forEachEntry(in: [path], matching: filter) { entry in
                seqs.append(entry.seq ?? 0)
                return true
            }
            return seqs
        }
        #expect(try select(AuditLogFilter()) == [1, 2, 3, 4, 5, 6])
        #expect(try select(AuditLogFilter(sessionID: "imp_1")) == [2, 3, 6])
        #expect(try select(AuditLogFilter(user: "jdoe")) == [2, 3, 5, 6])
        #expect(try select(AuditLogFilter(impersonator: "admin")) == [2, 3, 6])
        #expect(try select(AuditLogFilter(actor: "operator")) == [5])
        #expect(try select(AuditLogFilter(types: ["request"])) == [3, 4])
        let from = AuditTimestamp(millisecondsSinceEpoch: base + 2000), to = AuditTimestamp(millisecondsSinceEpoch: base + 4000)
        #expect(try select(AuditLogFilter(from: from, to: to)) == [3, 4])
        #expect(try select(AuditLogFilter(user: "jdoe", types: ["request"], from: from)) == [3])

        var first: AuditLogEntry?
        try AuditLogReader.forEachEntry(in: [path], matching: AuditLogFilter(types: ["impersonation_started"])) { entry in
            first = entry
            return false
        }
        let entry = try #require(first)
        #expect(entry.timestamp == AuditTimestamp(millisecondsSinceEpoch: base + 1000))
        #expect(entry["mode"]?.stringValue == "read-only")
        #expect(entry["justification"]?.stringValue == "ticket 42 VISIBLE")
        #expect(entry.line.hasPrefix("{\"ts\":"))
        #expect(throws: AuditError.self) { try AuditLogReader.forEachEntry(in: [directory.file("none")]) { _ in true } }
    }

    @Test func standardOutputDestination() throws {
        let writer = try AuditWriter(configuration: AuditWriterConfiguration(destination: .standardOutput, redactor: defaultRedactor))
        let results = Collected<Result<UInt64, AuditError>>()
        #expect(writer.append(AuditRecord(type: .login, user: "stdout-test"), durable: true) { results.add($0) })
        #expect(results.wait(for: 1))
        #expect(try results.values[0].get() == 1)
        writer.reopen()  // no effect on standard output
        writer.close()
    }
}
