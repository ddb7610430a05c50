import Foundation
import Testing

@testable import ActAsAudit

@Suite struct VerifierTests {
    /// Lines of a chain seq first...first+count-1 continuing from `prev`.
    static func chain(count: Int, first: UInt64 = 1, prev: AuditHash = .genesis) -> (lines: [String], last: AuditHash) {
        var prev = prev
        var lines: [String] = []
        let encoder = AuditLineEncoder(redactor: defaultRedactor)
        for offset in 0..<count {
            var out: [UInt8] = []
            prev = encoder.encode(sampleRequest(offset), seq: first + UInt64(offset), prev: prev, into: &out)
            lines.append(String(decoding: out.dropLast(), as: UTF8.self))
        }
        return (lines, prev)
    }

    /// Two files: seq 1–6 and 7–10.
    func makeLog(_ directory: TemporaryDirectory) -> (older: String, current: String, lines: [String]) {
        let (lines, _) = Self.chain(count: 10)
        let older = directory.file("audit.jsonl.000000000001")
        let current = directory.file("audit.jsonl")
        writeLines(Array(lines[0..<6]), to: older)
        writeLines(Array(lines[6...]), to: current)
        return (older, current, lines)
    }

    @Test func untouchedLogVerifies() {
        let directory = TemporaryDirectory()
        let (older, current, _) = makeLog(directory)
        let result = AuditVerifier.verify(files: [older, current])
        #expect(result == .ok(records: 10, lastSeq: 10, anchorSeq: nil))
        #expect(result.summary == "ok: 10 records, last seq 10")
        #expect(result.note == nil)
        #expect(AuditFiles.chainOrder(for: current) == [older, current])
    }

    @Test func laterFilesAloneVerifyAgainstAnAnchor() {
        let directory = TemporaryDirectory()
        let (_, current, _) = makeLog(directory)
        let result = AuditVerifier.verify(files: [current])
        #expect(result == .ok(records: 4, lastSeq: 10, anchorSeq: 7))
        #expect(result.note?.contains("seq 7") == true)
    }

    func expectBroken(_ result: AuditVerification, seq: UInt64, file: String, line: Int, containing text: String,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .broken(let gotSeq, let gotFile, let gotLine, let why) = result else {
            Issue.record("expected broken, got \(result.summary)", sourceLocation: sourceLocation)
            return
        }
        #expect(gotSeq == seq, sourceLocation: sourceLocation)
        #expect(gotFile == file, sourceLocation: sourceLocation)
        #expect(gotLine == line, sourceLocation: sourceLocation)
        #expect(why.contains(text), "\(why)", sourceLocation: sourceLocation)
        #expect(result.summary == "broken at seq \(seq) (\(file):\(line)): \(why)", sourceLocation: sourceLocation)
    }

    @Test func truncatedLastLine() throws {
        let directory = TemporaryDirectory()
        let (older, current, lines) = makeLog(directory)
        let text = Array(lines[6...]).joined(separator: "\n") + "\n"
        _ = FileManager.default.createFile(atPath: current, contents: Data(text.utf8.dropLast(30)))
        expectBroken(AuditVerifier.verify(files: [older, current]), seq: 10, file: current, line: 4, containing: "incomplete")
        // Only the newline missing is still a torn write.
        _ = FileManager.default.createFile(atPath: current, contents: Data(text.utf8.dropLast()))
        expectBroken(AuditVerifier.verify(files: [older, current]), seq: 10, file: current, line: 4, containing: "incomplete")
    }

    @Test func reorderedLines() {
        let directory = TemporaryDirectory()
        let (older, current, lines) = makeLog(directory)
        var tampered = Array(lines[0..<6])
        tampered.swapAt(3, 4)
        writeLines(tampered, to: older)
        expectBroken(AuditVerifier.verify(files: [older, current]), seq: 5, file: older, line: 4, containing: "seq 5 follows seq 3")
    }

    @Test(arguments: [0, 1, 40, 100, 200])
    func editedByteAnywhere(offset: Int) throws {
        let directory = TemporaryDirectory()
        let (older, current, lines) = makeLog(directory)
        var bytes = Array(lines[2].utf8)
        let position = min(offset, bytes.count - 1)
        // Change a hex digit into another hex digit, anything else into another printable byte.
        bytes[position] = bytes[position] == UInt8(ascii: "a") ? UInt8(ascii: "b") : (bytes[position] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0"))
        var tampered = Array(lines[0..<6])
        tampered[2] = String(decoding: bytes, as: UTF8.self)
        writeLines(tampered, to: older)
        guard case .broken(let seq, let file, let line, _) = AuditVerifier.verify(files: [older, current]) else {
            Issue.record("edit at \(position) not detected")
            return
        }
        #expect(file == older)
        #expect(line == 3)
        #expect(seq == 3)
    }

    @Test func everySingleByteEditIsDetected() {
        let directory = TemporaryDirectory()
        let (lines, _) = Self.chain(count: 3)
        let path = directory.file("a.jsonl")
        let original = Array(lines[1].utf8)
        for position in original.indices {
            var bytes = original
            bytes[position] ^= 0x01
            writeLines([lines[0], String(decoding: bytes, as: UTF8.self), lines[2]], to: path)
            let result = AuditVerifier.verify(files: [path])
            guard case .broken(_, _, let line, _) = result else {
                Issue.record("flipping byte \(position) (\(UnicodeScalar(original[position]))) went unnoticed")
                continue
            }
            #expect(line == 2 || line == 3, "byte \(position)")
        }
    }

    @Test func editedRecordWithRecomputedHashBreaksTheNextLink() throws {
        let directory = TemporaryDirectory()
        let (older, current, lines) = makeLog(directory)
        // A forger rewrites record 3 and recomputes its hash, but cannot fix record 4's prev.
        let (forgedLines, _) = Self.chain(count: 3)
        var record = sampleRequest(2)
        record.path = "/innocent"
        var out: [UInt8] = []
        let prev3 = try #require(AuditHash(hex: try referenceHash(ofLine: forgedLines[1]).stored))
        AuditLineEncoder(redactor: defaultRedactor).encode(record, seq: 3, prev: prev3, into: &out)
        var tampered = Array(lines[0..<6])
        tampered[2] = String(decoding: out.dropLast(), as: UTF8.self)
        writeLines(tampered, to: older)
        expectBroken(AuditVerifier.verify(files: [older, current]), seq: 4, file: older, line: 4, containing: "prev does not match the hash of seq 3")
    }

    @Test func deletedLine() {
        let directory = TemporaryDirectory()
        let (older, current, lines) = makeLog(directory)
        var tampered = Array(lines[0..<6])
        tampered.remove(at: 4)
        writeLines(tampered, to: older)
        expectBroken(AuditVerifier.verify(files: [older, current]), seq: 6, file: older, line: 5, containing: "missing")
        // Deleting the last line of a rotated file shows at the next file's first line.
        writeLines(Array(lines[0..<5]), to: older)
        expectBroken(AuditVerifier.verify(files: [older, current]), seq: 7, file: current, line: 1, containing: "seq 7 follows seq 5")
        // Deleting the very first line: the chain then starts at seq 2, which the file's name
        // (its first seq, 1) contradicts.
        writeLines(Array(lines[1..<6]), to: older)
        expectBroken(AuditVerifier.verify(files: [older, current]), seq: 2, file: older, line: 1, containing: "removed from its start")
        expectBroken(AuditVerifier.verify(files: [older]), seq: 2, file: older, line: 1, containing: "says its first record is seq 1")
    }

    @Test func cutHeadIsNotTakenAsAnAnchor() {
        let directory = TemporaryDirectory()
        let (lines, _) = Self.chain(count: 10)
        // A log that never rotated, with its first record deleted.
        let alone = directory.file("audit.jsonl")
        writeLines(Array(lines[1...]), to: alone)
        expectBroken(AuditVerifier.verify(files: [alone]), seq: 2, file: alone, line: 1, containing: "no rotated file with earlier records")
        // A rotated file named for its first seq is a legitimate anchor, alone or followed by the current file.
        let rotated = directory.file("audit.jsonl.000000000002")
        writeLines(Array(lines[1..<5]), to: rotated)
        writeLines(Array(lines[5...]), to: alone)
        #expect(AuditVerifier.verify(files: [rotated]) == .ok(records: 4, lastSeq: 5, anchorSeq: 2))
        #expect(AuditVerifier.verify(files: [rotated, alone]) == .ok(records: 9, lastSeq: 10, anchorSeq: 2))
        // The current file alone, with a rotated file (earlier seq) beside it.
        #expect(AuditVerifier.verify(files: [alone]) == .ok(records: 5, lastSeq: 10, anchorSeq: 6))
        // A name with a counter suffix after a collision still names the first seq.
        let collided = directory.file("other.jsonl.000000000006-1")
        writeLines(Array(lines[5...]), to: collided)
        #expect(AuditVerifier.verify(files: [collided]).isOK)
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl.000000001042") == 1042)
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl.000000001042-2") == 1042)
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl.1") == nil)
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl.000000001042-") == nil)
        #expect(AuditFiles.rotatedSeq(inName: "audit.jsonl") == nil)
    }

    @Test func insertedLines() throws {
        let directory = TemporaryDirectory()
        let (older, current, lines) = makeLog(directory)
        // A well-formed forged record chained after seq 2 claims seq 3.
        var out: [UInt8] = []
        let prev = try #require(AuditHash(hex: try referenceHash(ofLine: lines[1]).stored))
        AuditLineEncoder(redactor: defaultRedactor).encode(sampleRequest(99), seq: 3, prev: prev, into: &out)
        var tampered = Array(lines[0..<6])
        tampered.insert(String(decoding: out.dropLast(), as: UTF8.self), at: 2)
        writeLines(tampered, to: older)
        expectBroken(AuditVerifier.verify(files: [older, current]), seq: 3, file: older, line: 4, containing: "seq 3 follows seq 3")
        // Garbage and blank lines are unreadable; the report names the expected seq.
        for junk in ["not json", "", "{\"seq\":3}", "[1,2]"] {
            var withJunk = Array(lines[0..<6])
            withJunk.insert(junk, at: 2)
            writeLines(withJunk, to: older)
            expectBroken(AuditVerifier.verify(files: [older, current]), seq: 3, file: older, line: 3, containing: "unreadable")
        }
    }

    @Test func duplicatedLine() {
        let directory = TemporaryDirectory()
        let (older, current, lines) = makeLog(directory)
        var tampered = Array(lines[0..<6])
        tampered.insert(lines[3], at: 4)
        writeLines(tampered, to: older)
        expectBroken(AuditVerifier.verify(files: [older, current]), seq: 4, file: older, line: 5, containing: "duplicated")
    }

    @Test func fileListProblems() {
        let directory = TemporaryDirectory()
        let (older, current, _) = makeLog(directory)
        expectBroken(AuditVerifier.verify(files: [older, "", current]), seq: 7, file: "\"\"", line: 0, containing: "empty file name")
        let empty = directory.file("empty.jsonl")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        expectBroken(AuditVerifier.verify(files: [older, empty, current]), seq: 7, file: empty, line: 0, containing: "file is empty")
        // An empty current file (just rotated or reopened) is fine at the end.
        #expect(AuditVerifier.verify(files: [older, current, empty]) == .ok(records: 10, lastSeq: 10, anchorSeq: nil))
        #expect(AuditVerifier.verify(files: [empty]) == .ok(records: 0, lastSeq: 0, anchorSeq: nil))
        let missing = directory.file("missing.jsonl")
        expectBroken(AuditVerifier.verify(files: [older, missing]), seq: 7, file: missing, line: 0, containing: "cannot read")
        // Files out of order, or one left out.
        expectBroken(AuditVerifier.verify(files: [current, older]), seq: 1, file: older, line: 1, containing: "seq 1 follows seq 10")
        #expect(AuditVerifier.verify(files: []).isOK == false)
    }

    @Test func firstRecordMustStartFromZeros() throws {
        let directory = TemporaryDirectory()
        let fake = try #require(AuditHash(hex: String(repeating: "ab", count: 32)))
        let (lines, _) = Self.chain(count: 2, first: 1, prev: fake)
        let path = directory.file("a.jsonl")
        writeLines(lines, to: path)
        expectBroken(AuditVerifier.verify(files: [path]), seq: 1, file: path, line: 1, containing: "64 zeros")
    }

    @Test func hashMemberMustBeLastAndExact() throws {
        let directory = TemporaryDirectory()
        let (lines, _) = Self.chain(count: 1)
        let path = directory.file("a.jsonl")
        let line = lines[0]
        let spaced = line.replacingOccurrences(of: #","hash":""#, with: #", "hash":""#)
        let crlf = line + "\r"
        let upper = String(line.dropLast(66)) + line.suffix(66).uppercased().replacingOccurrences(of: "\"}", with: "\"}")
        for variant in [spaced, crlf, upper] {
            writeLines([variant], to: path)
            #expect(!AuditVerifier.verify(files: [path]).isOK, "\(variant)")
        }
    }
}
