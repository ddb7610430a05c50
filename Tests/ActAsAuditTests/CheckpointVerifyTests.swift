import ActAsCore
import Foundation
import Testing

@testable import ActAsAudit

/// `audit verify`'s checkpoint checks (SPEC §10.6) on logs built line by line. A stand-in
/// signature (`sig` = "kid:covers.head.instance") keeps the logic visible; the ES256 signer is
/// ActAsCrypto's and is exercised end to end (tests/e2e/test_audit_proof.py).
@Suite struct CheckpointVerifyTests {
    static let instance = "edge-1"

    static func fakeSig(kid: String, covers: UInt64, head: String, instance: String) -> String {
        "\(kid):\(covers).\(head).\(instance)"
    }

    /// Accepts signatures by the kids given.
    static func signatures(_ kids: Set<String> = ["k1"]) -> CheckpointSignatureCheck {
        { checkpoint in
            guard kids.contains(checkpoint.kid) else { return .unknownKey }
            return checkpoint.sig == fakeSig(kid: checkpoint.kid, covers: checkpoint.covers, head: checkpoint.head,
                                             instance: checkpoint.instance) ? .valid : .invalid
        }
    }

    /// A chained log of `count` records: a request, except that every `every`-th record is a
    /// checkpoint of the record before it. `edit` may change a record's members before it is
    /// chained (a rewrite computes a fresh chain over the changed records).
    static func log(count: Int, every: Int = 4, kid: String = "k1", edit: (UInt64, inout String) -> Void = { _, _ in })
        -> [String]
    {
        var lines: [String] = []
        var prev = AuditHash.genesis
        var hashes: [UInt64: String] = [:]
        for seq in UInt64(1)...UInt64(count) {
            var members: String
            if seq % UInt64(every) == 0 {
                let head = hashes[seq - 1]!
                let sig = fakeSig(kid: kid, covers: seq - 1, head: head, instance: instance)
                members = #""type":"checkpoint","covers":\#(seq - 1),"head":"\#(head)","instance":"\#(instance)","kid":"\#(kid)","sig":"\#(sig)""#
            } else {
                members = #""type":"request","method":"GET","path":"/p\#(seq)","status":200,"user":"u\#(seq)""#
            }
            edit(seq, &members)
            let body = #"{"ts":"2026-12-07T08:00:00.000Z","seq":\#(seq),\#(members),"prev":"\#(prev.hex)"}"#
            let hash = AuditChain.hash(prev: prev, lineWithoutHash: Array(body.utf8))
            lines.append(String(body.dropLast()) + #","hash":"\#(hash.hex)"}"#)
            hashes[seq] = hash.hex
            prev = hash
        }
        return lines
    }

    func write(_ lines: [String], in directory: TemporaryDirectory) -> String {
        let path = directory.file("audit.jsonl")
        writeLines(lines, to: path)
        return path
    }

    func printed(_ report: AuditVerificationReport, stored: [AuditCheckpoint] = []) -> [String] {
        let problems = report.problems + stored.compactMap { report.problem(againstStored: $0) }
        return AuditVerificationOutput.lines(chain: report.chain, problems: problems).stdout
    }

    @Test func anUntouchedLogWithCheckpointsVerifies() {
        let directory = TemporaryDirectory()
        let path = write(Self.log(count: 13), in: directory)
        let report = AuditVerifier.verify(files: [path], signatures: Self.signatures())
        #expect(report.chain == .ok(records: 13, lastSeq: 13, anchorSeq: nil))
        #expect(report.problems.isEmpty)
        #expect(report.checkpoints.map(\.seq) == [4, 8, 12])
        #expect(report.checkpoints.map(\.covers) == [3, 7, 11])
        #expect(report.instances == [Self.instance])
        #expect(printed(report) == ["ok: 13 records, last seq 13"])
        let output = AuditVerificationOutput.lines(chain: report.chain, problems: report.problems)
        #expect(output.ok && output.stderr.isEmpty)
    }

    @Test func aSignatureChangedAndRechainedIsABadSignature() {
        let directory = TemporaryDirectory()
        let lines = Self.log(count: 13) { seq, members in
            if seq == 8 { members = members.replacingOccurrences(of: #""sig":"k1:"#, with: #""sig":"k1:9"#) }
        }
        let report = AuditVerifier.verify(files: [write(lines, in: directory)], signatures: Self.signatures())
        #expect(report.chain.isOK)
        #expect(printed(report) == ["checkpoint 8: bad signature"])
        #expect(!AuditVerificationOutput.lines(chain: report.chain, problems: report.problems).ok)
    }

    @Test func aCheckpointByAnUnknownKeyIsABadSignature() {
        let directory = TemporaryDirectory()
        let lines = Self.log(count: 9, kid: "attacker")
        let report = AuditVerifier.verify(files: [write(lines, in: directory)], signatures: Self.signatures())
        #expect(printed(report) == ["checkpoint 4: bad signature", "checkpoint 8: bad signature"])
        #expect(report.problems.first?.detail.contains("no key given has kid attacker") == true)
    }

    @Test func aFullRewriteWithAFreshChainFailsAtItsFirstCheckpoint() {
        let directory = TemporaryDirectory()
        let original = Self.log(count: 13)
        // The rewriter changes record 2, recomputes every hash, and copies the signed
        // checkpoints it cannot re-sign.
        let checkpointMembers = Dictionary(uniqueKeysWithValues: [4, 8, 12].map { seq -> (UInt64, String) in
            let line = original[seq - 1]
            let start = line.range(of: #""type""#)!.lowerBound
            let end = line.range(of: #","prev""#)!.lowerBound
            return (UInt64(seq), String(line[start..<end]))
        })
        let rewritten = Self.log(count: 13) { seq, members in
            if seq == 2 { members = members.replacingOccurrences(of: "u2", with: "mallory") }
            if let copied = checkpointMembers[seq] { members = copied }
        }
        #expect(rewritten[0] == original[0] && rewritten[1] != original[1])
        let report = AuditVerifier.verify(files: [write(rewritten, in: directory)], signatures: Self.signatures())
        #expect(report.chain.isOK)
        #expect(printed(report).first == "checkpoint 4: head does not match")
    }

    @Test func aLogCutBeforeTheStoresLastCheckpointIsTruncated() {
        let directory = TemporaryDirectory()
        let whole = Self.log(count: 13)
        let report = AuditVerifier.verify(files: [write(Array(whole[0..<10]), in: directory)], signatures: Self.signatures())
        let stored = AuditCheckpoint(seq: 12, covers: 11, head: String(repeating: "a", count: 64), instance: Self.instance,
                                     kid: "k1", sig: "x", timestamp: Date())
        #expect(printed(report, stored: [stored]) == ["truncated: log ends at seq 10, store has checkpoint 12"])
        // The store's checkpoint 8 is in the log: nothing to say.
        let fullReport = AuditVerifier.verify(files: [write(whole, in: directory)], signatures: Self.signatures())
        let eight = fullReport.checkpoints[1]
        #expect(fullReport.problem(againstStored: eight) == nil)
        #expect(report.problem(againstStored: eight) == nil)
        // A log that no longer holds the store's checkpoint where it belongs was rewritten.
        var other = eight
        other.head = String(repeating: "b", count: 64)
        #expect(fullReport.problem(againstStored: other)?.description == "checkpoint 8: head does not match")
        var notACheckpoint = eight
        notACheckpoint.seq = 9
        #expect(fullReport.problem(againstStored: notACheckpoint)?.description == "checkpoint 9: head does not match")
    }

    @Test func aLogRotatedManyTimesStillVerifies() {
        let directory = TemporaryDirectory()
        let lines = Self.log(count: 40, every: 5)
        let current = directory.file("audit.jsonl")
        // Rotated after every checkpoint (as the writer does): ten files, each named for its first seq.
        var start = 0
        var files: [String] = []
        while start < lines.count {
            let end = min(lines.count, start + 5)
            let path = end == lines.count ? current : AuditFiles.rotatedPath(for: current, firstSeq: UInt64(start + 1))
            writeLines(Array(lines[start..<end]), to: path)
            files.append(path)
            start = end
        }
        #expect(AuditFiles.chainOrder(for: current) == files)
        let report = AuditVerifier.verify(files: AuditFiles.chainOrder(for: current), signatures: Self.signatures())
        #expect(report.chain == .ok(records: 40, lastSeq: 40, anchorSeq: nil))
        #expect(report.problems.isEmpty && report.checkpoints.count == 8)
        // A later part alone: checkpoints covering records in files not given are not held against it.
        let later = AuditVerifier.verify(files: Array(files[3...]), signatures: Self.signatures())
        #expect(later.problems.isEmpty && later.chain.isOK)
    }

    @Test func problemsBeforeABreakArePrintedThenTheBreak() {
        let directory = TemporaryDirectory()
        var lines = Self.log(count: 13, kid: "attacker")
        lines.remove(at: 9)  // seq 10
        let report = AuditVerifier.verify(files: [write(lines, in: directory)], signatures: Self.signatures())
        let output = printed(report)
        #expect(output.count == 3)
        #expect(Array(output[0..<2]) == ["checkpoint 4: bad signature", "checkpoint 8: bad signature"])
        #expect(output[2].hasPrefix("broken at seq 11 ("))
    }

    @Test func aCheckpointRecordMissingItsMembersIsABadSignature() {
        let directory = TemporaryDirectory()
        let lines = Self.log(count: 5) { seq, members in
            if seq == 4 { members = #""type":"checkpoint","covers":3"# }
        }
        let report = AuditVerifier.verify(files: [write(lines, in: directory)], signatures: Self.signatures())
        #expect(printed(report) == ["checkpoint 4: bad signature"])
    }

    @Test func withoutKeysHeadsAreStillCheckedAndCheckpointsCounted() {
        let directory = TemporaryDirectory()
        let lines = Self.log(count: 9) { seq, members in
            if seq == 8 { members = members.replacingOccurrences(of: #""covers":7"#, with: #""covers":6"#) }
        }
        let report = AuditVerifier.verify(files: [write(lines, in: directory)], signatures: nil)
        #expect(!report.signaturesChecked && report.checkpoints.count == 2)
        #expect(printed(report) == ["checkpoint 8: head does not match"])
    }
}
