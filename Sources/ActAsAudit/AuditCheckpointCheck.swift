import ActAsCore
import Foundation

/// Checks a checkpoint's signature against a key ring or JWKS (the CLI passes ActAsCrypto's
/// `CheckpointSigner`; this module does not sign or hold keys).
public typealias CheckpointSignatureCheck = (AuditCheckpoint) -> CheckpointSignature

public enum CheckpointSignature: Sendable, Equatable {
    case valid
    /// No key given has the checkpoint's `kid`.
    case unknownKey
    /// The key is known and the signature is not its signature of the checkpoint.
    case invalid
}

/// What `actas audit verify` reports about checkpoints (SPEC §10.6), besides a broken chain.
public enum CheckpointProblem: Sendable, Equatable, CustomStringConvertible {
    /// `checkpoint S: bad signature`. `unknownKey`: no key given has its `kid` (said on stderr,
    /// not in the line), also for a checkpoint record missing its members.
    case badSignature(seq: UInt64, detail: String)
    /// `checkpoint S: head does not match`: `head` is not the hash of record `covers` in the
    /// files given, or the store's copy of checkpoint S differs from the record at seq S.
    case headMismatch(seq: UInt64, detail: String)
    /// `truncated: log ends at seq S, store has checkpoint T`.
    case truncated(logEndsAt: UInt64, storeHas: UInt64)

    public var description: String {
        switch self {
        case .badSignature(let seq, _): return "checkpoint \(seq): bad signature"
        case .headMismatch(let seq, _): return "checkpoint \(seq): head does not match"
        case .truncated(let end, let stored): return "truncated: log ends at seq \(end), store has checkpoint \(stored)"
        }
    }

    /// Why, in a sentence for stderr.
    public var detail: String {
        switch self {
        case .badSignature(_, let detail), .headMismatch(_, let detail): return detail
        case .truncated(let end, let stored):
            return "the store keeps checkpoint \(stored), but the log given ends at seq \(end): records were cut from its end"
        }
    }

    /// Where in the log the problem is, to report problems in log order.
    public var seq: UInt64 {
        switch self {
        case .badSignature(let seq, _), .headMismatch(let seq, _): return seq
        case .truncated(let end, _): return end
        }
    }
}

/// A checkpoint record as read from a log line; nil members were missing or of the wrong type.
struct LoggedCheckpoint: Sendable {
    static let recordType = "checkpoint"

    var seq: UInt64
    var covers: UInt64?
    var head: String?
    var instance: String?
    var kid: String?
    var sig: String?
    var timestamp: Date?

    init(seq: UInt64, members: [AuditValue.Member]) {
        self.seq = seq
        func only(_ key: String) -> AuditValue? {
            let found = members.filter { $0.key == key }
            return found.count == 1 ? found[0].value : nil
        }
        covers = only("covers")?.integerValue.flatMap { $0 >= 1 ? UInt64($0) : nil }
        head = only("head")?.stringValue
        instance = only("instance")?.stringValue
        kid = only("kid")?.stringValue
        sig = only("sig")?.stringValue
        timestamp = only("ts")?.stringValue.flatMap(AuditTimestamp.parse)?.date
    }

    var value: AuditCheckpoint? {
        guard let covers, let head, let instance, let kid, let sig else { return nil }
        return AuditCheckpoint(seq: seq, covers: covers, head: head, instance: instance, kid: kid, sig: sig,
                               timestamp: timestamp ?? Date(timeIntervalSince1970: 0))
    }
}

/// The result of `AuditVerifier.verify(files:signatures:)`.
public struct AuditVerificationReport: Sendable {
    /// The hash chain (SPEC §8).
    public var chain: AuditVerification
    /// Every well-formed checkpoint record read, in log order (up to a break in the chain).
    public var checkpoints: [AuditCheckpoint]
    /// Checkpoint problems found before the chain ended or broke, in log order.
    public var problems: [CheckpointProblem]
    /// False when no keys were given: signatures were not checked.
    public var signaturesChecked: Bool

    /// The first seq of the files given (1 unless older files were left out).
    public var firstSeq: UInt64? {
        guard case .ok(let records, let lastSeq, let anchor) = chain, records > 0 else { return nil }
        return anchor ?? (lastSeq - UInt64(records) + 1)
    }

    /// The store's latest checkpoint of an instance against the log (SPEC §10.6): a log that
    /// ends before it was cut; where the log reaches it, the record at its seq must be that
    /// checkpoint (a log rewritten without it, or with another one there, does not pass).
    /// Nothing to say when the chain is broken (that is reported) or the files given start
    /// after it (the older files were not given).
    public func problem(againstStored stored: AuditCheckpoint) -> CheckpointProblem? {
        guard case .ok(let records, let lastSeq, _) = chain else { return nil }
        guard records > 0, let firstSeq else { return .truncated(logEndsAt: 0, storeHas: stored.seq) }
        if stored.seq > lastSeq { return .truncated(logEndsAt: lastSeq, storeHas: stored.seq) }
        if stored.seq < firstSeq { return nil }
        let logged = checkpoints.first { $0.seq == stored.seq }
        guard let logged, logged.covers == stored.covers, logged.head == stored.head, logged.instance == stored.instance
        else {
            let what = logged == nil ? "record \(stored.seq) of the log is not a checkpoint" : "the checkpoint logged at seq \(stored.seq) is not the one the store keeps"
            return .headMismatch(seq: stored.seq, detail: "\(what): the log was rewritten")
        }
        return nil
    }

    /// The instances whose checkpoints the log holds.
    public var instances: [String] {
        var seen: [String] = []
        for checkpoint in checkpoints where !seen.contains(checkpoint.instance) { seen.append(checkpoint.instance) }
        return seen
    }
}

/// Follows the chain as the verifier reads it and checks each checkpoint record: `head` must be
/// the hash of record `covers` (which must come before the checkpoint), and the signature must
/// be valid. A rewrite with a fresh chain fails here at its first checkpoint: copied
/// checkpoints name heads of the old chain, and new ones cannot be signed with the ring's keys.
struct CheckpointChecker {
    let signatures: CheckpointSignatureCheck?
    private(set) var checkpoints: [AuditCheckpoint] = []
    private(set) var problems: [CheckpointProblem] = []
    /// The hashes of the last `window` records, by seq modulo the window.
    private var recent: [(seq: UInt64, hash: AuditHash)?]
    private static let window = 1 << 16
    private var firstSeq: UInt64?

    init(signatures: CheckpointSignatureCheck?) {
        self.signatures = signatures
        recent = Array(repeating: nil, count: Self.window)
    }

    mutating func observe(_ line: InspectedLine) {
        if firstSeq == nil { firstSeq = line.seq }
        if let logged = line.checkpoint { check(logged) }
        recent[Int(line.seq % UInt64(Self.window))] = (line.seq, line.hash)
    }

    private mutating func check(_ logged: LoggedCheckpoint) {
        guard let checkpoint = logged.value else {
            problems.append(.badSignature(seq: logged.seq, detail: "the checkpoint record lacks covers, head, instance, kid or sig"))
            return
        }
        checkpoints.append(checkpoint)
        if let signatures {
            switch signatures(checkpoint) {
            case .valid: break
            case .unknownKey:
                problems.append(.badSignature(seq: logged.seq, detail: "no key given has kid \(checkpoint.kid)"))
                return
            case .invalid:
                problems.append(.badSignature(seq: logged.seq, detail: "the signature is not key \(checkpoint.kid)'s over covers, head and instance"))
                return
            }
        }
        guard checkpoint.covers < checkpoint.seq else {
            problems.append(.headMismatch(seq: logged.seq, detail: "it covers record \(checkpoint.covers), which is not before it"))
            return
        }
        if let firstSeq, checkpoint.covers < firstSeq { return }  // covers a record in a file not given
        let slot = recent[Int(checkpoint.covers % UInt64(Self.window))]
        guard let slot, slot.seq == checkpoint.covers else {
            problems.append(.headMismatch(seq: logged.seq, detail: "it covers record \(checkpoint.covers), too far before it to check"))
            return
        }
        if slot.hash.hex != checkpoint.head {
            problems.append(.headMismatch(seq: logged.seq, detail: "record \(checkpoint.covers)'s hash is \(slot.hash.hex), the checkpoint names \(checkpoint.head)"))
        }
    }
}

/// What `actas audit verify` prints (SPEC §2, §10.6): `ok: N records, last seq S` alone when
/// all is well; otherwise every problem in log order, a broken chain last (nothing after a
/// break can be trusted). Details and notes go to stderr.
public enum AuditVerificationOutput {
    public static func lines(chain: AuditVerification, problems: [CheckpointProblem]) -> (stdout: [String], stderr: [String], ok: Bool) {
        var ordered = problems.enumerated().sorted { ($0.element.seq, $0.offset) < ($1.element.seq, $1.offset) }.map(\.element)
        if case .broken(let seq, _, _, _) = chain { ordered = ordered.filter { $0.seq < seq } }
        var stdout = ordered.map(\.description)
        var stderr = ordered.map { "note: \($0): \($0.detail)" }
        if !chain.isOK { stdout.append(chain.summary) }
        if stdout.isEmpty { stdout.append(chain.summary) }
        if let note = chain.note { stderr.append(note) }
        return (stdout, stderr, chain.isOK && ordered.isEmpty)
    }
}
