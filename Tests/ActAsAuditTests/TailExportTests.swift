import ActAsCore
import Foundation
import Testing

@testable import ActAsAudit

/// What `actas audit tail` and `export` use, now in ActAsAudit: the follower across rotations,
/// the last-N buffer, the terminal format and the CSV export.
@Suite struct TailExportTests {
    /// Lines of one chain, seq 1…count (`VerifierTests.chain`).
    static func lines(_ count: Int) -> [String] { VerifierTests.chain(count: count).lines }

    func append(_ lines: [String], to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(lines.map { $0 + "\n" }.joined().utf8))
        handle.closeFile()
    }

    func rotate(_ path: String, firstSeq: UInt64) throws {
        try FileManager.default.moveItem(atPath: path, toPath: AuditFiles.rotatedPath(for: path, firstSeq: firstSeq))
    }

    @Test func theFollowerReadsAppendsAndRotationsOnceEachInOrder() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let all = Self.lines(30)
        try append(Array(all[0..<5]), to: path)
        var follower = AuditLogFollower(path: path)
        var seen: [UInt64] = []
        follower.readAll { seen.append($0.seq!) }
        #expect(seen == [1, 2, 3, 4, 5] && follower.lastSeq == 5)

        // Appended, with a partial line that waits for its newline.
        try append(Array(all[5..<7]), to: path)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(all[7].prefix(20).utf8))
        handle.closeFile()
        #expect(follower.poll().map { $0.seq! } == [6, 7])
        let rest = try #require(FileHandle(forWritingAtPath: path))
        rest.seekToEndOfFile()
        rest.write(Data((all[7].dropFirst(20) + "\n").utf8))
        rest.closeFile()
        #expect(follower.poll().map { $0.seq! } == [8])

        // Two rotations between polls: the rest of the open file, the file rotated in between,
        // then the new current file.
        try append(Array(all[8..<10]), to: path)
        try rotate(path, firstSeq: 1)
        try append(Array(all[10..<15]), to: path)
        try rotate(path, firstSeq: 11)
        try append(Array(all[15..<18]), to: path)
        // Not rotated files of this log: another log's, and names this writer never makes.
        writeLines(Array(all[20..<22]), to: directory.file("audit.jsonl.000000000012-x"))
        writeLines(Array(all[22..<24]), to: directory.file("audit.jsonl.000000000013-"))
        writeLines(Array(all[24..<26]), to: directory.file("other.jsonl.000000000016"))
        #expect(follower.poll().map { $0.seq! } == Array(9...18))
        #expect(follower.poll().isEmpty)

        // Truncated in place (copytruncate): read again from the start; a new chain's seq 1 is new.
        try Data().write(to: URL(fileURLWithPath: path))
        try append(Array(all[0..<2]), to: path)
        #expect(follower.poll().map { $0.seq! } == [1, 2])
        follower.stop()
    }

    /// The follower now uses ActAsAudit's rule; the CLI's copy took any suffix after `-`
    /// (`…012-x`, `…012-`) as a rotation counter.
    @Test func theRotatedFileRuleIsTheWritersOne() {
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl.000000000012") == 12)
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl.000000000012-3") == 12)
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl.000000000012-x") == nil)
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl.000000000012-") == nil)
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl.12") == nil)
    }

    @Test func aFollowerStartedBeforeTheLogExistsPicksItUp() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        var follower = AuditLogFollower(path: path)
        #expect(!follower.isOpen && follower.poll().isEmpty)
        try append(Array(Self.lines(3)), to: path)
        #expect(follower.poll().map { $0.seq! } == [1, 2, 3])
        follower.stop()
    }

    @Test func theTailBufferKeepsTheLastN() throws {
        var buffer = AuditTailBuffer(capacity: 3)
        for line in Self.lines(7) { buffer.append(try #require(AuditLogEntry(line: line))) }
        #expect(buffer.elements.map { $0.seq! } == [5, 6, 7] && buffer.count == 3)
        var none = AuditTailBuffer(capacity: 0)
        none.append(try #require(AuditLogEntry(line: Self.lines(1)[0])))
        #expect(none.elements.isEmpty)
    }

    static func entry(_ members: String) -> AuditLogEntry {
        AuditLogEntry(line: #"{"ts":"2026-11-06T10:15:23.123Z","seq":4,"# + members + #","prev":"x","hash":"y"}"#)!
    }

    @Test func humanLinesSayWhoDidWhatAndEscapeHostileText() {
        let format = AuditRecordFormat(json: false, colour: false)
        let request = Self.entry(#""type":"request","method":"GET","path":"/api/users","query":{"q":"1","t":["a","b"]},"status":201,"duration_ms":3.2,"user":"jdoe","impersonator":"admin","session_id":"imp_1","mode":"read-only""#)
        #expect(format.human(request) == "2026-11-06 10:15:23  request  admin as jdoe  GET /api/users?q=1&t=a,b → 201  3.2 ms  read-only  imp_1")
        let hostile = Self.entry(#""type":"login_failed","target":"x\u001b[31mred\u2028y","reason":"bad password""#)
        let line = format.human(hostile)
        #expect(TerminalText.isSafe(line) && !line.contains("\u{1B}"))
        #expect(line.contains(#"reason="bad password""#))
        let coloured = AuditRecordFormat(json: false, colour: true).render(request)
        #expect(coloured.contains("\u{1B}[32m201\u{1B}[0m") && coloured.hasSuffix("\n"))
        // --json: the line as logged; a raw control character in a hand-edited line is re-escaped.
        #expect(AuditRecordFormat(json: true, colour: true).render(request) == request.line + "\n")
        let edited = AuditLogEntry(line: "{\"seq\":1,\"user\":\"a\u{2028}b\"}")!
        #expect(AuditRecordFormat.safeLine(edited) == #"{"seq":1,"user":"a\u2028b"}"#)
    }

    @Test func csvRowsAreRFC4180WithFormulasNeutralised() {
        #expect(AuditCSV.header.hasPrefix("ts,seq,type,request_id,") && AuditCSV.header.hasSuffix(",extra,prev,hash\r\n"))
        let row = AuditCSV.row(Self.entry(#""type":"login_failed","target":"=cmd|' /C calc'!A0","detail":"a,\"b\"","x_custom":1"#))
        let cells = row.dropLast(2).split(separator: ",", omittingEmptySubsequences: false)
        #expect(row.hasSuffix("\r\n"))
        #expect(cells[0] == "2026-11-06T10:15:23.123Z" && cells[1] == "4" && cells[2] == "login_failed")
        #expect(row.contains(#"'=cmd|' /C calc'!A0"#))
        #expect(row.contains(#""a,""b""""#))
        #expect(row.contains(#""{""x_custom"":1}""#))
        #expect(AuditCSV.cell("-1") == "'-1" && AuditCSV.cell("\tx") == "'\\u0009x" && AuditCSV.cell("plain") == "plain")
        #expect(AuditCSV.columns.count == AuditRecord.keyOrder.count + 1)
    }
}
