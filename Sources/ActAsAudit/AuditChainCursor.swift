/// Where the chain stands (SPEC §8): the next record's `seq`, the last record's `hash` (the next
/// one's `prev`), and how much was written since the last checkpoint (SPEC §10.6). A value: a
/// batch keeps a copy before writing and puts it back when the write fails, so nothing is
/// numbered twice and a retry reuses the seqs.
struct AuditChainCursor {
    private(set) var nextSeq: UInt64 = 1
    private(set) var prev = AuditHash.genesis
    /// The last record written (or found at start) is a checkpoint.
    private(set) var lastIsCheckpoint = false
    private(set) var checkpoints: AuditCheckpointSchedule?

    init(checkpoints: AuditCheckpointSchedule?) {
        self.checkpoints = checkpoints
    }

    /// Continues after a record found in a file.
    mutating func adopt(seq: UInt64, hash: AuditHash, isCheckpoint: Bool) {
        nextSeq = seq + 1
        prev = hash
        lastIsCheckpoint = isCheckpoint
    }

    /// After adopting the log at start: a log that does not end in a checkpoint has unsealed
    /// records (a crash, or an older version), which the interval checkpoint seals.
    mutating func noteUnsealedTail() {
        if nextSeq > 1 && !lastIsCheckpoint, checkpoints != nil, checkpoints!.recordsSince == 0 { checkpoints!.recordsSince = 1 }
    }

    /// Moves past a record other than a checkpoint; true when a checkpoint is due by count.
    mutating func advance(past hash: AuditHash) -> Bool {
        nextSeq += 1
        prev = hash
        lastIsCheckpoint = false
        guard checkpoints != nil else { return false }
        checkpoints!.recordsSince += 1
        return checkpoints!.dueByCount
    }

    /// Moves past a checkpoint written at `now` (monotonic milliseconds).
    mutating func advance(pastCheckpoint hash: AuditHash, now: UInt64) {
        nextSeq += 1
        prev = hash
        lastIsCheckpoint = true
        checkpoints?.recordsSince = 0
        checkpoints?.lastAt = now
    }

    /// What a checkpoint written now would cover, nil when nothing awaits one.
    var unsealed: (covers: UInt64, head: AuditHash, settings: AuditCheckpointSettings)? {
        guard let checkpoints, checkpoints.hasUnsealedRecords, nextSeq > 1 else { return nil }
        return (nextSeq - 1, prev, checkpoints.settings)
    }
}
