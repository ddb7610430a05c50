import ActAsCore
import Foundation

/// When and how the writer seals the log with a signed checkpoint (SPEC §10.6).
public struct AuditCheckpointSettings: Sendable {
    /// `audit.checkpoint_every`: a checkpoint after this many other records.
    public var every: Int
    /// `audit.checkpoint_interval`: a checkpoint this long after the last one when other records
    /// were written since.
    public var interval: Duration
    /// `listen.instance_id` as resolved: signed, and the store's key for the copy.
    public var instance: String
    /// Signs `covers + "." + head + "." + instance` with the current assertion key: `kid` and
    /// `sig`, or nil when no key is available (the checkpoint is skipped until one is; the
    /// closure reports why). Runs on the writer thread.
    public var sign: @Sendable (_ covers: UInt64, _ head: String, _ instance: String) -> (kid: String, sig: String)?
    /// Receives each checkpoint once it is durable in the log (for the store's copy). Runs on the
    /// writer thread: must only hand off.
    public var onCheckpoint: @Sendable (AuditCheckpoint) -> Void

    public init(
        every: Int = 1000, interval: Duration = .seconds(60), instance: String,
        sign: @escaping @Sendable (UInt64, String, String) -> (kid: String, sig: String)?,
        onCheckpoint: @escaping @Sendable (AuditCheckpoint) -> Void = { _ in }
    ) {
        self.every = max(every, 1)
        self.interval = interval
        self.instance = instance
        self.sign = sign
        self.onCheckpoint = onCheckpoint
    }

    var intervalMilliseconds: UInt64 {
        let (seconds, attoseconds) = interval.components
        return UInt64(max(seconds, 0)) * 1000 + UInt64(max(attoseconds, 0) / 1_000_000_000_000_000)
    }
}

/// The writer's checkpoint bookkeeping: records since the last checkpoint, and when it was.
struct AuditCheckpointSchedule {
    let settings: AuditCheckpointSettings
    /// Records other than checkpoints written since the last checkpoint. After a restart whose
    /// log did not end in a checkpoint: 1 (the count is unknown, but something is unsealed).
    var recordsSince = 0
    /// Monotonic milliseconds of the last checkpoint (or of the writer's start).
    var lastAt: UInt64

    init(settings: AuditCheckpointSettings, now: UInt64) {
        self.settings = settings
        self.lastAt = now
    }

    /// A checkpoint is due by count.
    var dueByCount: Bool { recordsSince >= settings.every }

    /// When the interval checkpoint falls due (monotonic milliseconds); nil with nothing to seal.
    var deadline: UInt64? { recordsSince > 0 ? lastAt + settings.intervalMilliseconds : nil }

    func dueByTime(now: UInt64) -> Bool { deadline.map { now >= $0 } ?? false }

    /// Rotation, reopening and shutdown seal what was written since the last checkpoint.
    var hasUnsealedRecords: Bool { recordsSince > 0 }
}

extension AuditLineEncoder {
    /// Upper bound of a checkpoint line's length for `instance`: the room kept free at the end of
    /// a file so the checkpoint sealing it fits under `max_file_size`.
    static func checkpointLineBound(instance: String) -> Int {
        var line: [UInt8] = []
        let widest = AuditTimestamp(millisecondsSinceEpoch: 253_402_300_799_999)  // 9999-12-31T23:59:59.999Z
        // kid: 43 characters (base64url of SHA-256); sig: 86 (64 bytes). Escaping at most ×6.
        let escapedInstance = String(repeating: "\u{1}", count: instance.utf8.count)
        _ = encodeCheckpoint(
            covers: .max, head: String(repeating: "0", count: 64), instance: escapedInstance,
            kid: String(repeating: "k", count: 43), sig: String(repeating: "s", count: 86), timestamp: widest,
            seq: .max, prev: .genesis, into: &line)
        return line.count
    }

    /// Appends a checkpoint line (`\n` included) and returns its hash. Key order: `ts`, `seq`,
    /// `type`, `covers`, `head`, `instance`, `kid`, `sig`, `prev`, `hash`. Nothing is redacted:
    /// every value is ours, and the signed ones must read back exactly.
    static func encodeCheckpoint(
        covers: UInt64, head: String, instance: String, kid: String, sig: String, timestamp: AuditTimestamp,
        seq: UInt64, prev: AuditHash, into out: inout [UInt8]
    ) -> AuditHash {
        var body: [UInt8] = []
        body.reserveCapacity(256 + instance.utf8.count)
        JSONWriter.writeRaw(#""type":"checkpoint","covers":"#, into: &body)
        JSONWriter.writeInteger(covers, into: &body)
        JSONWriter.writeRaw(#","head":"#, into: &body)
        JSONWriter.writeString(head, into: &body)
        JSONWriter.writeRaw(#","instance":"#, into: &body)
        JSONWriter.writeString(instance, into: &body)
        JSONWriter.writeRaw(#","kid":"#, into: &body)
        JSONWriter.writeString(kid, into: &body)
        JSONWriter.writeRaw(#","sig":"#, into: &body)
        JSONWriter.writeString(sig, into: &body)
        return body.withUnsafeBytes { encode(body: $0, timestamp: timestamp, seq: seq, prev: prev, into: &out) }
    }
}
