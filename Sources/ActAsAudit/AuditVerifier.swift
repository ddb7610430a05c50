import Crypto

/// The chain facts of one log line, read from its exact bytes.
struct InspectedLine {
    var seq: UInt64
    var prev: AuditHash
    var hash: AuditHash
    /// Whether `hash` equals SHA-256(prev + "\n" + L) of this line's bytes.
    var hashMatches: Bool
    /// Set for a `"type":"checkpoint"` record (SPEC §10.6).
    var checkpoint: LoggedCheckpoint? = nil
}

struct LineDefect: Error, CustomStringConvertible {
    var description: String
    /// The `seq` member when it could still be read.
    var seq: UInt64?
}

enum AuditLineInspector {
    private static let suffixLength = AuditChain.hashSuffixLength

    /// Parses a line (without `\n`) strictly: one JSON object, `seq` a positive integer, `prev`
    /// second to last, `hash` last and spelled exactly `,"hash":"<64 hex>"}` at the end.
    static func inspect(_ line: UnsafeBufferPointer<UInt8>) -> Result<InspectedLine, LineDefect> {
        if line.isEmpty { return .failure(LineDefect(description: "empty line")) }
        let value: AuditValue
        do throws(JSONParser.Failure) {
            value = try JSONParser.parse(line, maxDepth: 128)
        } catch {
            return .failure(LineDefect(description: "not valid JSON", seq: scrapeSeq(line)))
        }
        guard case .object(let members) = value else {
            return .failure(LineDefect(description: "not a JSON object"))
        }
        let seqMembers = members.filter { $0.key == "seq" }
        guard seqMembers.count == 1, case .integer(let seqValue) = seqMembers[0].value, seqValue >= 1 else {
            return .failure(LineDefect(description: "no single positive integer seq"))
        }
        let seq = UInt64(seqValue)
        guard members.count >= 2, members[members.count - 1].key == "hash", members[members.count - 2].key == "prev",
            members.filter({ $0.key == "hash" || $0.key == "prev" }).count == 2
        else {
            return .failure(LineDefect(description: "prev and hash are not the last two members", seq: seq))
        }
        guard let prevText = members[members.count - 2].value.stringValue, let prev = AuditHash(hex: prevText) else {
            return .failure(LineDefect(description: "prev is not 64 lower-case hex digits", seq: seq))
        }
        guard line.count > suffixLength,
            line[(line.count - suffixLength)..<(line.count - 66)].elementsEqual(AuditChain.hashMemberPrefix),
            line[line.count - 2] == UInt8(ascii: "\""), line[line.count - 1] == UInt8(ascii: "}"),
            let hash = AuditHash(hexBytes: line[(line.count - 66)..<(line.count - 2)])
        else {
            return .failure(LineDefect(description: "hash is not written as ,\"hash\":\"<64 lower-case hex>\"}", seq: seq))
        }
        let computed = chainHash(prev: prev, lineWithoutHashMember: UnsafeBufferPointer(rebasing: line[0..<(line.count - suffixLength)]))
        var inspected = InspectedLine(seq: seq, prev: prev, hash: hash, hashMatches: computed == hash)
        if members.contains(where: { $0.key == "type" && $0.value == .string(LoggedCheckpoint.recordType) }) {
            inspected.checkpoint = LoggedCheckpoint(seq: seq, members: members)
        }
        return .success(inspected)
    }

    /// SHA-256(prev + "\n" + body + "}") without copying the line.
    private static func chainHash(prev: AuditHash, lineWithoutHashMember body: UnsafeBufferPointer<UInt8>) -> AuditHash {
        var hasher = SHA256()
        prev.withHexBytes { hasher.update(bufferPointer: $0) }
        withUnsafeBytes(of: UInt8(ascii: "\n")) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: UnsafeRawBufferPointer(body))
        withUnsafeBytes(of: UInt8(ascii: "}")) { hasher.update(bufferPointer: $0) }
        return AuditHash(digest: hasher.finalize())
    }

    /// `"seq":<digits>` near the start of an unreadable line, to name it in a report.
    private static func scrapeSeq(_ line: UnsafeBufferPointer<UInt8>) -> UInt64? {
        let needle = Array(#""seq":"#.utf8)
        let window = UnsafeBufferPointer(rebasing: line[0..<min(line.count, 200)])
        guard let start = MultipartParser.find(needle, in: window, from: 0) else { return nil }
        var index = start + needle.count
        var value: UInt64 = 0
        var digits = 0
        while index < window.count, window[index] >= 0x30, window[index] <= 0x39, digits < 19 {
            value = value * 10 + UInt64(window[index] - 0x30)
            index += 1
            digits += 1
        }
        return digits > 0 && value > 0 ? value : nil
    }
}

/// The result of `actas audit verify FILE…`.
public enum AuditVerification: Sendable, Equatable {
    /// `anchorSeq` is set when the first record given was not seq 1: its `prev` was trusted as
    /// the anchor because the older files were not given.
    case ok(records: Int, lastSeq: UInt64, anchorSeq: UInt64?)
    /// `seq`: the first broken record's seq (the expected seq when the line is unreadable);
    /// `line` is 1-based, 0 for a problem with the file as a whole.
    case broken(seq: UInt64, file: String, line: Int, why: String)

    public var isOK: Bool {
        if case .ok = self { return true }
        return false
    }

    /// The line SPEC §2 prescribes: `ok: N records, last seq S` or `broken at seq S (FILE:LINE): why`.
    public var summary: String {
        switch self {
        case .ok(let records, let lastSeq, _): return "ok: \(records) records, last seq \(lastSeq)"
        case .broken(let seq, let file, let line, let why): return "broken at seq \(seq) (\(file):\(line)): \(why)"
        }
    }

    /// A second line worth printing, if any (the anchor caveat).
    public var note: String? {
        guard case .ok(_, _, let anchor?) = self else { return nil }
        return "note: the chain starts at seq \(anchor); its prev was taken on trust because the files with the earlier records were not given"
    }
}

/// Checks a log given as files in chain order: every line a record whose hash matches its exact
/// bytes, each `prev` the previous record's hash, `seq` increasing by one across files, the chain
/// starting from 64 zeros at seq 1. Reads the raw bytes; nothing is re-serialised.
public enum AuditVerifier {
    public static func verify(files: [String]) -> AuditVerification {
        verifyChain(files: files) { _ in }
    }

    /// The chain, and every checkpoint record in it (AuditCheckpointCheck.swift): its `head`
    /// against the hash of the record it covers and, given `signatures`, its signature.
    public static func verify(files: [String], signatures: CheckpointSignatureCheck?) -> AuditVerificationReport {
        var checker = CheckpointChecker(signatures: signatures)
        let chain = verifyChain(files: files) { inspected in checker.observe(inspected) }
        return AuditVerificationReport(chain: chain, checkpoints: checker.checkpoints, problems: checker.problems,
                                       signaturesChecked: signatures != nil)
    }

    private static func verifyChain(files: [String], observe: (InspectedLine) -> Void) -> AuditVerification {
        guard !files.isEmpty else { return .broken(seq: 1, file: "-", line: 0, why: "no files given") }
        var records = 0
        var last: (seq: UInt64, hash: AuditHash)?
        var anchor: UInt64?
        var failure: AuditVerification?

        for (fileIndex, file) in files.enumerated() {
            let expected = (last?.seq ?? 0) + 1
            if file.isEmpty {
                return .broken(seq: expected, file: "\"\"", line: 0, why: "empty file name")
            }
            var linesInFile = 0
            let readError = AuditFiles.forEachLine(path: file) { line, number, terminated in
                linesInFile = number
                let expected = (last?.seq ?? 0) + 1
                func broken(_ seq: UInt64, _ why: String) -> Bool {
                    failure = .broken(seq: seq, file: file, line: number, why: why)
                    return false
                }
                guard terminated else {
                    return broken(expected, "incomplete last line (truncated record, no newline)")
                }
                let inspected: InspectedLine
                switch AuditLineInspector.inspect(line) {
                case .failure(let defect):
                    return broken(last == nil ? (defect.seq ?? 1) : expected, "unreadable record: \(defect.description)")
                case .success(let value):
                    inspected = value
                }
                if let last {
                    if inspected.seq != expected {
                        let what = inspected.seq <= last.seq
                            ? "a record is duplicated or out of order" : "a record is missing or out of order"
                        return broken(inspected.seq, "seq \(inspected.seq) follows seq \(last.seq): \(what)")
                    }
                    guard inspected.hashMatches else {
                        return broken(inspected.seq, "hash mismatch: the record was modified")
                    }
                    guard inspected.prev == last.hash else {
                        return broken(
                            inspected.seq,
                            "prev does not match the hash of seq \(last.seq): a record was removed, replaced or reordered")
                    }
                } else {
                    guard inspected.hashMatches else {
                        return broken(inspected.seq, "hash mismatch: the record was modified")
                    }
                    if inspected.seq == 1 {
                        guard inspected.prev == .genesis else {
                            return broken(1, "the first record's prev is not 64 zeros")
                        }
                    } else {
                        // Only where the log's own file names show an earlier part: otherwise the
                        // chain's head was cut (its first records deleted), which must not pass.
                        if let why = AuditFiles.missingHead(file: file, firstSeq: inspected.seq) {
                            return broken(inspected.seq, why)
                        }
                        anchor = inspected.seq
                    }
                }
                last = (inspected.seq, inspected.hash)
                records += 1
                observe(inspected)
                return true
            }
            if let failure { return failure }
            if let readError {
                return .broken(seq: expected, file: file, line: 0, why: "cannot read: \(FileIO.errorText(readError))")
            }
            if linesInFile == 0 && fileIndex < files.count - 1 {
                // Rotation only ever renames a file with records in it; an empty one in the middle
                // stands where records should be.
                return .broken(seq: expected, file: file, line: 0, why: "file is empty")
            }
        }
        return .ok(records: records, lastSeq: last?.seq ?? 0, anchorSeq: anchor)
    }
}
