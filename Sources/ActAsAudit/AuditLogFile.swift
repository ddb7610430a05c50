#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ActAsCore
import Foundation
import Synchronization

/// The file side of the writer. Confined to the writer thread once that starts (the initializer
/// runs before, on the caller's thread), hence `@unchecked Sendable`.
final class AuditFileSink: @unchecked Sendable {
    struct Counters {
        var written: UInt64 = 0
        var failed: UInt64 = 0
        var syncs: UInt64 = 0
        var rotations: UInt64 = 0
    }

    private let path: String?  // nil: standard output
    private var maxFileSize: Int64
    private var encoder: AuditLineEncoder
    private let onError: @Sendable (AuditError) -> Void
    private let onSessionLines: (@Sendable ([AuditSessionLine]) -> Void)?
    private var sessionLines: [AuditSessionLine] = []

    private var chain: AuditChainCursor
    var nextSeq: UInt64 { chain.nextSeq }
    private var prev: AuditHash { chain.prev }
    private(set) var counters = Counters()

    private var fd: Int32 = -1
    private var fileSize: Int64 = 0
    private var fileIdentity: (device: UInt64, inode: UInt64)?
    private var isRegularFile = true
    private var firstSeqInFile: UInt64 = 1
    private var failing = false
    private var lastFailureReport: UInt64 = 0
    private var lastPathCheck: UInt64 = 0

    /// The lines of the batch not yet written, encoded in place, their records, and the chain
    /// as it was before the first of them.
    private var chunk: [UInt8] = []
    private var chunkRecords: [(completion: AuditWriter.Completion?, seq: UInt64, durable: Bool)] = []
    private var chainAtChunkStart: AuditChainCursor
    /// Written records waiting for an fsync.
    private var awaitingSync: [(AuditWriter.Completion?, UInt64)] = []
    /// Completions to run once the batch is done (on the writer thread, by the queue).
    private var answers: [(AuditWriter.Completion, Result<UInt64, AuditError>)] = []

    /// Group commit (nil for standard output, where written is as durable as it gets).
    let syncer: AuditSyncer?
    /// The sync thread's handle on the current file, made when first needed.
    private var syncedFile: SyncedFile?

    /// Kept free at the end of a file for the checkpoint that seals it at rotation.
    private let checkpointRoom: Int64

    init(configuration: AuditWriterConfiguration, onError: @escaping @Sendable (AuditError) -> Void) throws(AuditError) {
        self.maxFileSize = configuration.maxFileSize
        self.encoder = AuditLineEncoder(redactor: configuration.redactor, instance: configuration.instance)
        self.onError = onError
        self.onSessionLines = configuration.onSessionLines
        if case .file = configuration.destination {
            syncer = AuditSyncer(onSessionLines: configuration.onSessionLines, onError: onError)
        } else {
            syncer = nil
        }
        chunk.reserveCapacity(64 * 1024)
        chain = AuditChainCursor(
            checkpoints: configuration.checkpoints.map { AuditCheckpointSchedule(settings: $0, now: Self.monotonicMilliseconds()) })
        chainAtChunkStart = chain
        checkpointRoom = configuration.checkpoints.map { Int64(AuditLineEncoder.checkpointLineBound(instance: $0.instance)) } ?? 0
        switch configuration.destination {
        case .standardOutput:
            path = nil
            fd = STDOUT_FILENO
            isRegularFile = false
        case .file(let configuredPath):
            path = configuredPath
            if let code = FileIO.makeDirectories(FileIO.directory(of: configuredPath)) {
                throw AuditError(kind: .open, path: configuredPath, code: code, message: "cannot create the directory")
            }
            if let error = openFile(continuingChain: false) { throw error }
        }
        chain.noteUnsealedTail()
    }

    /// When the interval checkpoint falls due (monotonic milliseconds), if records await one.
    var checkpointDeadline: UInt64? { chain.checkpoints?.deadline }

    /// The interval checkpoint is due now.
    var checkpointDue: Bool { chain.checkpoints?.dueByTime(now: Self.monotonicMilliseconds()) ?? false }

    private var displayPath: String { path ?? "-" }

    static func monotonicMilliseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
    }

    // MARK: Opening and recovery

    /// Opens the configured path for appending. With `continuingChain` false (start-up) the chain
    /// is taken from the file (or the newest rotated file); with true (reopen, recovery) the
    /// in-memory chain is kept and a file whose last record is not our previous one is set aside.
    /// Returns the error when the path cannot be opened.
    private func openFile(continuingChain: Bool) -> AuditError? {
        guard let path else { return nil }
        _ = FileIO.makeDirectories(FileIO.directory(of: path))  // a failure shows up as open's error
        let opened: Int32
        switch FileIO.openForAppend(path) {
        case .success(let descriptor): opened = descriptor
        case .failure(let failure):
            return AuditError(kind: .open, path: path, code: failure.code, message: "cannot open for appending")
        }
        guard let status = FileIO.status(of: opened) else {
            let code = errno
            FileIO.close(opened)
            return AuditError(kind: .open, path: path, code: code, message: "cannot stat")
        }
        fd = opened
        fileSize = status.isRegular ? status.size : 0
        fileIdentity = (status.device, status.inode)
        isRegularFile = status.isRegular
        lastPathCheck = Self.monotonicMilliseconds()

        if !status.isRegular || status.size == 0 {
            if !continuingChain { adoptChainFromRotatedFiles() }
            firstSeqInFile = nextSeq
            if status.isRegular { FileIO.syncDirectory(of: path) }
            return nil
        }
        switch AuditFiles.inspectTail(path: path) {
        case .empty:
            if !continuingChain { adoptChainFromRotatedFiles() }
            firstSeqInFile = nextSeq
            return nil
        case .clean(let last):
            if !continuingChain {
                adopt(last)
            } else if last.hash != prev || last.seq + 1 != nextSeq {
                return setAside(why: "its last record (seq \(last.seq)) is not the chain's last record")
            }
            firstSeqInFile = AuditFiles.firstSeq(path: path) ?? last.seq
            return nil
        case .damaged(let lastValid, let why):
            if !continuingChain {
                if let lastValid { adopt(lastValid) } else { adoptChainFromRotatedFiles() }
            }
            return setAside(why: why)
        }
    }

    private func adopt(_ line: InspectedLine) {
        chain.adopt(seq: line.seq, hash: line.hash, isCheckpoint: line.checkpoint != nil)
    }

    private func adoptChainFromRotatedFiles() {
        guard let path else { return }
        for file in AuditFiles.chainOrder(for: path).reversed() where file != path {
            switch AuditFiles.inspectTail(path: file) {
            case .clean(let last), .damaged(let last?, _):
                adopt(last)
                return
            default:
                continue
            }
        }
    }

    /// Renames the current file like a rotated one and starts a new one at the path.
    private func setAside(why: String) -> AuditError? {
        guard let path else { return nil }
        closeDescriptor()
        let firstSeq = AuditFiles.firstSeq(path: path) ?? nextSeq
        let target = AuditFiles.unusedRotatedPath(for: path, firstSeq: firstSeq)
        if let code = FileIO.rename(path, target) {
            return AuditError(kind: .recovery, path: path, code: code, message: "\(why); cannot move it aside to \(target)")
        }
        onError(AuditError(
            kind: .recovery, path: path,
            message: "\(why); moved it to \(target) and continue the chain at seq \(nextSeq) in a new file"))
        switch FileIO.openForAppend(path) {
        case .success(let descriptor):
            fd = descriptor
            let status = FileIO.status(of: descriptor)
            fileSize = status?.size ?? 0
            fileIdentity = status.map { ($0.device, $0.inode) }
            isRegularFile = status?.isRegular ?? true
            firstSeqInFile = nextSeq
            FileIO.syncDirectory(of: path)
            return nil
        case .failure(let failure):
            return AuditError(kind: .open, path: path, code: failure.code, message: "cannot open for appending")
        }
    }

    private func closeDescriptor() {
        syncedFile = nil
        if fd >= 0 && path != nil { FileIO.close(fd) }
        if path != nil { fd = -1 }
    }

    func apply(_ settings: AuditSinkSettings) {
        maxFileSize = settings.maxFileSize
        encoder = AuditLineEncoder(redactor: settings.redactor, instance: encoder.instance)
    }

    func reopen() {
        guard path != nil else { return }
        if fd >= 0 {
            _ = FileIO.sync(fd)
            closeDescriptor()
        }
        if let error = openFile(continuingChain: true) { fail(error) }
    }

    func close() {
        syncer?.stop()  // every record handed to it answered
        guard fd >= 0 else { return }
        if path != nil {
            if FileIO.sync(fd) == nil { counters.syncs += 1 }
            closeDescriptor()
        }
    }

    // MARK: Writing

    /// Writes a batch; appends one outcome per record that has a completion.
    ///
    /// The batch's lines are encoded into `chunk` and written with one `write`; a chunk ends
    /// early only to rotate. Records written but not yet durable wait in `awaitingSync`, and
    /// the whole batch is handed to the sync thread at the end (one `fsync` for all of it).
    func process(_ batch: [WriterQueueItem], outcomes: inout [(AuditWriter.Completion, Result<UInt64, AuditError>)]) {
        startChunk()
        if syncer?.takeFailure() != nil {
            // Reported by the sync thread; the file is suspect: reopen the path.
            failing = true
            lastFailureReport = Self.monotonicMilliseconds()
            closeDescriptor()
        }
        checkPathIfDue()
        if fd < 0, let error = openFile(continuingChain: true) {
            fail(error)
            failRemaining(batch[...], error: error)
            answer(into: &outcomes)
            return
        }
        var batchError: AuditError?
        for (position, item) in batch.enumerated() {
            switch item {
            case .record(let record, let durable, let completion):
                let lineStart = chunk.count
                let hash = encoder.encode(record, seq: nextSeq, prev: prev, into: &chunk)
                batchError = take(
                    lineStart: lineStart, hash: hash, sessionID: record.sessionID, timestamp: record.timestamp,
                    completion: completion, durable: durable
                ) { [encoder] seq, prev, out in encoder.encode(record, seq: seq, prev: prev, into: &out) }
                if let batchError { failRemaining(batch[position...], error: batchError) }
            case .encoded(let records):
                var taken = 0
                records.forEach { timestamp, sessionID, body in
                    let lineStart = chunk.count
                    let hash = AuditLineEncoder.encode(body: body, timestamp: timestamp, seq: nextSeq, prev: prev, into: &chunk)
                    batchError = take(
                        lineStart: lineStart, hash: hash, sessionID: sessionID, timestamp: timestamp, completion: nil,
                        durable: false
                    ) { seq, prev, out in AuditLineEncoder.encode(body: body, timestamp: timestamp, seq: seq, prev: prev, into: &out) }
                    if batchError == nil { taken += 1 }
                    return batchError == nil
                }
                if let batchError {
                    counters.failed += UInt64(records.count - taken)
                    failRemaining(batch[(position + 1)...], error: batchError)
                }
            case .checkpoint:
                appendCheckpoint()
            }
            if batchError != nil { break }
        }
        if batchError == nil {
            batchError = writeChunk()
        }
        if batchError == nil && path != nil && isRegularFile, let status = FileIO.status(of: fd), status.links == 0 {
            batchError = AuditError(kind: .fileReplaced, path: displayPath, message: "the file was deleted while being written")
        }
        if let batchError {
            failAwaitingSync(batchError)
        } else if !awaitingSync.isEmpty {
            if let syncer, let file = currentSyncedFile() {
                syncer.submit(SyncRequest(file: file, completions: awaitingSync, sessionLines: sessionLines))
                awaitingSync.removeAll()
                sessionLines.removeAll(keepingCapacity: true)
            } else if let error = syncNow() {
                batchError = error
            }
        }
        if let batchError {
            fail(batchError)
            closeDescriptor()  // the next batch reopens the path
        } else if failing {
            failing = false
            onError(AuditError(kind: .recovered, path: displayPath, message: "writing again"))
        }
        if !sessionLines.isEmpty {
            if batchError == nil { onSessionLines?(sessionLines) }
            sessionLines.removeAll(keepingCapacity: true)
        }
        answer(into: &outcomes)
    }

    /// The next lines start a new chunk: a failed write takes the chain back to here.
    private func startChunk() {
        chunk.removeAll(keepingCapacity: true)
        chunkRecords.removeAll(keepingCapacity: true)
        chainAtChunkStart = chain
    }

    private func answer(into outcomes: inout [(AuditWriter.Completion, Result<UInt64, AuditError>)]) {
        outcomes.append(contentsOf: answers)
        answers.removeAll(keepingCapacity: true)
    }

    /// Writes the chunk. Written records that must be durable wait for the sync; the others are
    /// answered. On failure the partial bytes are cut off, the chunk's records fail and the chain
    /// goes back to the chunk's start, so the next records reuse its seqs.
    private func writeChunk() -> AuditError? {
        if chunk.isEmpty { return nil }
        if let failure = chunk.withUnsafeBytes({ FileIO.writeAll(fd, $0) }) {
            if isRegularFile { _ = ftruncate(fd, off_t(fileSize)) }  // drop a partial line
            let error = AuditError(kind: .write, path: displayPath, code: failure, message: "write failed")
            for record in chunkRecords { if let completion = record.completion { answers.append((completion, .failure(error))) } }
            counters.failed += UInt64(chunkRecords.count)
            chain = chainAtChunkStart
            startChunk()
            return error
        }
        fileSize += Int64(chunk.count)
        counters.written += UInt64(chunkRecords.count)
        for record in chunkRecords {
            if record.durable {
                awaitingSync.append((record.completion, record.seq))
            } else if let completion = record.completion {
                answers.append((completion, .success(record.seq)))
            }
        }
        startChunk()
        return nil
    }

    /// fsync on this thread (standard output: nothing to sync) and answer the records waiting
    /// for it. Used at rotation and when the sync thread has no handle on the file.
    private func syncNow() -> AuditError? {
        if awaitingSync.isEmpty { return nil }
        var error: AuditError?
        if path != nil {
            if let failure = FileIO.sync(fd) {
                error = AuditError(kind: .sync, path: displayPath, code: failure, message: "fsync failed")
            } else {
                counters.syncs += 1
                if isRegularFile, let status = FileIO.status(of: fd), status.links == 0 {
                    error = AuditError(kind: .fileReplaced, path: displayPath, message: "the file was deleted while being written")
                }
            }
        }
        if let error {
            failAwaitingSync(error)
        } else {
            for (completion, seq) in awaitingSync { if let completion { answers.append((completion, .success(seq))) } }
            awaitingSync.removeAll()
        }
        return error
    }

    private func failAwaitingSync(_ error: AuditError) {
        for (completion, _) in awaitingSync { if let completion { answers.append((completion, .failure(error))) } }
        counters.failed += UInt64(awaitingSync.count)
        awaitingSync.removeAll()
    }

    /// Appends a signed checkpoint covering the last record, if records were written since the
    /// last checkpoint (SPEC §10.6). Its completion hands it on once it is durable.
    private func appendCheckpoint() {
        guard let (covers, headHash, settings) = chain.unsealed else { return }
        let head = headHash.hex
        guard let (kid, sig) = settings.sign(covers, head, settings.instance) else { return }
        let timestamp = AuditTimestamp.now()
        let hash = AuditLineEncoder.encodeCheckpoint(
            covers: covers, head: head, instance: settings.instance, kid: kid, sig: sig, timestamp: timestamp,
            seq: nextSeq, prev: prev, into: &chunk)
        let checkpoint = AuditCheckpoint(
            seq: nextSeq, covers: covers, head: head, instance: settings.instance, kid: kid, sig: sig,
            timestamp: timestamp.date)
        let onCheckpoint = settings.onCheckpoint
        chunkRecords.append(({ result in if case .success = result { onCheckpoint(checkpoint) } }, nextSeq, true))
        chain.advance(pastCheckpoint: hash, now: Self.monotonicMilliseconds())
    }

    /// Takes the line just encoded at the end of the chunk (from `lineStart`), rotating first
    /// when it would not fit in the current file (with room for the checkpoint that seals the
    /// file); `reencode` writes it again when a checkpoint took its seq.
    private func take(
        lineStart: Int, hash: AuditHash, sessionID: String?, timestamp: AuditTimestamp,
        completion: AuditWriter.Completion?, durable: Bool,
        reencode: (_ seq: UInt64, _ prev: AuditHash, _ out: inout [UInt8]) -> AuditHash
    ) -> AuditError? {
        var hash = hash
        var lineLength = chunk.count - lineStart
        if isRegularFile && path != nil && fileSize + Int64(lineStart) > 0
            && fileSize + Int64(chunk.count) + checkpointRoom > maxFileSize
        {
            // Rare: set the line aside, seal and write what precedes it, rotate, then put it back.
            let line = Array(chunk[lineStart...])
            chunk.removeSubrange(lineStart...)
            let sealed = nextSeq
            appendCheckpoint()
            if let error = writeChunk() ?? syncNow() { return error }
            if let error = rotate() {
                if fd < 0 { return error }
                fail(error)  // could not rename: keep appending to the oversized file
            }
            if nextSeq == sealed {
                chunk.append(contentsOf: line)
            } else {
                let start = chunk.count
                hash = reencode(nextSeq, prev, &chunk)
                lineLength = chunk.count - start
            }
        }
        if onSessionLines != nil, let sessionID {
            sessionLines.append(AuditSessionLine(
                sessionID: sessionID, seq: nextSeq, timestamp: timestamp,
                line: String(decoding: chunk[(chunk.count - lineLength)..<(chunk.count - 1)], as: UTF8.self)))
        }
        chunkRecords.append((completion, nextSeq, durable))
        if chain.advance(past: hash) { appendCheckpoint() }
        return nil
    }

    private func currentSyncedFile() -> SyncedFile? {
        if syncedFile == nil { syncedFile = SyncedFile(duplicating: fd, displayPath: displayPath, isRegular: isRegularFile) }
        return syncedFile
    }

    private func failRemaining(_ items: ArraySlice<WriterQueueItem>, error: AuditError) {
        for item in items {
            if case .record(_, _, let completion?) = item { answers.append((completion, .failure(error))) }
            counters.failed += UInt64(item.recordCount)
        }
    }

    /// Reports an error: the first of a run at once, then at most every 10 seconds.
    private func fail(_ error: AuditError) {
        let now = Self.monotonicMilliseconds()
        if !failing || now - lastFailureReport >= 10_000 {
            onError(error)
            lastFailureReport = now
        }
        failing = true
    }

    /// logrotate without SIGHUP: if the path now names another file (or none), reopen.
    private func checkPathIfDue() {
        guard let path, fd >= 0, isRegularFile else { return }
        let now = Self.monotonicMilliseconds()
        guard now - lastPathCheck >= 1000 else { return }
        lastPathCheck = now
        let current = FileIO.status(atPath: path)
        if current == nil || current!.inode != fileIdentity?.inode || current!.device != fileIdentity?.device {
            _ = FileIO.sync(fd)
            closeDescriptor()
            if let error = openFile(continuingChain: true) { fail(error) }
        }
    }

    /// Renames the full file to `<path>.<first seq>` and starts a new one (already fsync'd).
    private func rotate() -> AuditError? {
        guard let path else { return nil }
        _ = FileIO.sync(fd)  // the rotated file is complete on disk before the next one starts
        let target = AuditFiles.unusedRotatedPath(for: path, firstSeq: firstSeqInFile)
        if let code = FileIO.rename(path, target) {
            return AuditError(kind: .rotate, path: path, code: code, message: "cannot rename to \(target)")
        }
        closeDescriptor()
        counters.rotations += 1
        switch FileIO.openForAppend(path) {
        case .success(let descriptor):
            fd = descriptor
            let status = FileIO.status(of: descriptor)
            fileSize = status?.size ?? 0
            fileIdentity = status.map { ($0.device, $0.inode) }
            firstSeqInFile = nextSeq
            FileIO.syncDirectory(of: path)
            return nil
        case .failure(let failure):
            return AuditError(kind: .open, path: path, code: failure.code, message: "cannot open after rotation")
        }
    }
}
