#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// Where the log goes: `audit.file`, or standard output for `"-"`.
public enum AuditDestination: Sendable, Equatable {
    case file(String)
    case standardOutput
}

public struct AuditWriterConfiguration: Sendable {
    public var destination: AuditDestination
    public var redactor: Redactor
    /// `max_file_size`: a file is rotated before a record would take it past this size.
    public var maxFileSize: Int64
    /// Records waiting for the writer thread; `append` refuses beyond this.
    public var queueCapacity: Int
    /// Receives, on the writer thread after each successful batch, the written lines of
    /// records that belong to an impersonation session (the store keeps a copy for the people
    /// concerned). Must only hand off.
    public var onSessionLines: (@Sendable ([AuditSessionLine]) -> Void)?

    public init(
        destination: AuditDestination, redactor: Redactor, maxFileSize: Int64 = 100 << 20, queueCapacity: Int = 16_384,
        onSessionLines: (@Sendable ([AuditSessionLine]) -> Void)? = nil
    ) {
        self.destination = destination
        self.redactor = redactor
        self.maxFileSize = maxFileSize
        self.queueCapacity = max(queueCapacity, 1)
        self.onSessionLines = onSessionLines
    }
}

/// One written record of an impersonation session: exactly the line in the log (without the
/// newline), so the copy verifies against the file.
public struct AuditSessionLine: Sendable, Equatable {
    public var sessionID: String
    public var seq: UInt64
    public var timestamp: AuditTimestamp
    public var line: String
}

public struct AuditError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The writer was closed.
        case closed
        case open
        case write
        case sync
        case rotate
        /// An existing file was damaged or not ours; it was set aside (renamed) and a new one started.
        case recovery
        /// The file was deleted or replaced under the writer; it reopened the path.
        case fileReplaced
        /// Writing works again after failures (reported through the error hook as well).
        case recovered
    }

    public var kind: Kind
    public var path: String
    /// errno, when a system call failed.
    public var code: Int32?
    public var message: String

    public init(kind: Kind, path: String, code: Int32? = nil, message: String) {
        self.kind = kind
        self.path = path
        self.code = code
        self.message = message
    }

    public var description: String {
        let reason = code.map { ": \(FileIO.errorText($0))" } ?? ""
        return "audit log \(path): \(message)\(reason)"
    }
}

public struct AuditWriterStatistics: Sendable, Equatable {
    /// Records written (a durable one counts once it is written, before its fsync).
    public var written: UInt64 = 0
    /// `append` calls refused because the queue was full (or the writer closed).
    public var dropped: UInt64 = 0
    /// Records lost to write errors (their completions got a failure).
    public var failed: UInt64 = 0
    public var syncs: UInt64 = 0
    public var rotations: UInt64 = 0
    public var queued: Int = 0
    /// The seq of the last record written (0 before any).
    public var lastSeq: UInt64 = 0
}

/// Appends records to the request log off the event loop (ARCHITECTURE decision 7).
///
/// `append` only takes a lock and pushes onto a bounded queue; ONE dedicated thread takes
/// everything queued at once, assigns `seq`, redacts, encodes, chains, writes the batch with one
/// `write`, and — if any record in it is durable — calls `fsync` once for the whole batch (group
/// commit: records arriving during an fsync form the next batch). Completions run on the writer
/// thread and must only hand off (e.g. `eventLoop.execute`).
///
/// Files: on start the chain (`seq`, `prev`) is recovered from the last complete record of the
/// file, or of the newest rotated file when the file is empty or missing. A file that ends in a
/// partial line (a crash mid-write) or in a record that does not verify is never appended to: it
/// is renamed like a rotated file, an error is reported, and a new file continues the chain from
/// the last record that verifies (`audit verify` over all files will show the damage; the new
/// file verifies on its own). Rotation and `reopen()` keep `seq` and the chain. On a write error
/// the batch's completions fail, the chain is rolled back (a retry reuses the seqs), partial bytes
/// are truncated away, and the next batch reopens the path. Writing into a file that was deleted
/// is detected (link count 0) after each batch: durable records of that batch fail and the path
/// is reopened. A file moved away without `reopen()` is noticed within a second.
///
/// Standard output: no fsync, rotation or recovery (seq starts at 1 each run).
public final class AuditWriter: Sendable {
    public typealias Completion = @Sendable (Result<UInt64, AuditError>) -> Void

    /// The destination stays as opened; `update` replaces the redactor and `max_file_size`.
    public var configuration: AuditWriterConfiguration { current.withLock { $0 } }
    private let current: Mutex<AuditWriterConfiguration>
    private let queue: WriterQueue

    /// Opens (or creates) the log, recovers the chain and starts the writer thread.
    /// `onError` is called on the writer thread; it must not block.
    public init(configuration: AuditWriterConfiguration, onError: @escaping @Sendable (AuditError) -> Void = { _ in })
        throws(AuditError)
    {
        self.current = Mutex(configuration)
        let sink = try AuditFileSink(configuration: configuration, onError: onError)
        let queue = WriterQueue(capacity: configuration.queueCapacity)
        queue.statistics.lastSeq = sink.nextSeq - 1
        self.queue = queue
        let thread = Thread {
            FileIO.nameCurrentThread("actas-audit")
            queue.run(sink: sink)
        }
        thread.start()
    }

    deinit {
        queue.requestClose()
    }

    /// Queues a record. Returns false at once, without calling `completion`, when the queue is
    /// full or the writer is closed: refuse the impersonated request (503), count the drop for
    /// normal traffic. `durable`: the completion runs only after the line is written and fsync'd.
    /// Otherwise it runs after the write. The completion gets the record's seq or the failure.
    @discardableResult
    public func append(_ record: AuditRecord, durable: Bool = false, completion: Completion? = nil) -> Bool {
        queue.push(.record(record, durable: durable, completion: completion))
    }

    /// Queues non-durable records encoded elsewhere (an event loop hands over what it gathered
    /// over a few milliseconds) under one lock. All or none: false when the queue is full or closed.
    @discardableResult
    public func append(encoded records: EncodedAuditRecords) -> Bool {
        if records.isEmpty { return true }
        return queue.push(.encoded(records))
    }

    /// The encoder this writer uses, for `EncodedAuditRecords`.
    public var encoder: AuditLineEncoder { AuditLineEncoder(redactor: configuration.redactor) }

    /// For SIGHUP after an external logrotate moved the file: later records go to a new file at
    /// the configured path; the chain continues. Takes effect before the next batch.
    public func reopen() {
        queue.requestReopen()
    }

    /// SIGHUP: records the writer takes after this call are redacted with `redactor` and
    /// rotated at `maxFileSize` (the destination needs a restart). The event loops pick up the
    /// new `encoder` with their reloaded settings.
    public func update(redactor: Redactor, maxFileSize: Int64) {
        current.withLock {
            $0.redactor = redactor
            $0.maxFileSize = maxFileSize
        }
        queue.requestSettings(AuditSinkSettings(redactor: redactor, maxFileSize: maxFileSize))
    }

    /// Writes everything queued, fsyncs, closes the file and stops the thread. Blocks until done;
    /// call it from shutdown code, not from an event loop. Later `append`s return false.
    public func close() {
        queue.requestClose()
        queue.waitUntilFinished()
    }

    public var statistics: AuditWriterStatistics { queue.snapshot() }

    /// The seq the next record will get.
    public var nextSeq: UInt64 { queue.snapshot().lastSeq + 1 }
}

/// The reloadable part of the writer's configuration, handed to the writer thread.
struct AuditSinkSettings: Sendable {
    var redactor: Redactor
    var maxFileSize: Int64
}

/// What the queue holds: a record, or a round's worth of records an event loop encoded.
enum WriterQueueItem {
    case record(AuditRecord, durable: Bool, completion: AuditWriter.Completion?)
    case encoded(EncodedAuditRecords)

    var recordCount: Int {
        switch self {
        case .record: return 1
        case .encoded(let records): return records.count
        }
    }
}

/// The queue between event loops and the writer thread: a pthread mutex and condition variables.
final class WriterQueue: @unchecked Sendable {
    typealias Item = WriterQueueItem

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finishedCondition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let capacity: Int

    // Guarded by `mutex`.
    private var items: [Item] = []
    /// Records in `items` (an encoded item holds many); the capacity applies to these.
    private var queuedRecords = 0
    private var closing = false
    private var finished = false
    private var reopenRequested = false
    private var pendingSettings: AuditSinkSettings?
    private var writerSleeping = false
    /// The writer waits without a deadline because the queue was empty.
    private var writerIdle = false
    /// A single record is queued (an event, an impersonated request): the writer must not wait
    /// for more.
    private var urgentPending = false
    var statistics = AuditWriterStatistics()

    init(capacity: Int) {
        self.capacity = capacity
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(workAvailable, nil)
        pthread_cond_init(finishedCondition, nil)
        items.reserveCapacity(min(capacity, 4096))
    }

    deinit {
        pthread_cond_destroy(finishedCondition)
        pthread_cond_destroy(workAvailable)
        pthread_mutex_destroy(mutex)
        finishedCondition.deallocate()
        workAvailable.deallocate()
        mutex.deallocate()
    }

    @inline(__always)
    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    func push(_ item: Item) -> Bool {
        let count = item.recordCount
        // Single records are events (sign-ins, impersonation starting and ending, refusals) and
        // impersonated requests: few, and someone may look for them at once (an impersonated
        // request's response waits for its fsync). Plain requests come as encoded rounds.
        var urgent = false
        if case .record = item { urgent = true }
        pthread_mutex_lock(mutex)
        // An encoded round may take the queue past `capacity` once; the next push is refused.
        if closing || queuedRecords >= capacity {
            statistics.dropped += UInt64(count)
            pthread_mutex_unlock(mutex)
            return false
        }
        items.append(item)
        queuedRecords += count
        if urgent { urgentPending = true }
        // Waking the writer for every plain request would cost a futex call and a context
        // switch per request. Only the first records into an empty queue (it then gathers for
        // `idleWait`), single records and a filling queue wake it.
        let wake = writerSleeping && (writerIdle || urgent || queuedRecords >= Self.wakeAt)
        if wake {
            writerSleeping = false
            writerIdle = false
        }
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(workAvailable) }
        return true
    }

    /// Queue length that wakes the writer early.
    static let wakeAt = 1024
    /// How long plain request records gather before the writer takes them (nanoseconds). Each
    /// wake-up costs a futex call and a context switch: profiled under load, at 2 ms the
    /// writer's wake-ups came to about 0.8 µs per request, at 10 ms to about 0.2.
    static let idleWait: Int = 10_000_000

    func requestReopen() {
        locked { reopenRequested = true }
        pthread_cond_signal(workAvailable)
    }

    /// Taken with the next batch, under the same lock, so every record queued after this call
    /// is written with these settings.
    func requestSettings(_ settings: AuditSinkSettings) {
        locked { pendingSettings = settings }
    }

    func requestClose() {
        locked { closing = true }
        pthread_cond_signal(workAvailable)
    }

    func waitUntilFinished() {
        pthread_mutex_lock(mutex)
        while !finished { pthread_cond_wait(finishedCondition, mutex) }
        pthread_mutex_unlock(mutex)
    }

    func snapshot() -> AuditWriterStatistics {
        locked {
            var copy = statistics
            copy.queued = queuedRecords
            return copy
        }
    }

    private static func deadline(after nanoseconds: Int) -> timespec {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        deadline.tv_nsec += nanoseconds
        deadline.tv_sec += deadline.tv_nsec / 1_000_000_000
        deadline.tv_nsec %= 1_000_000_000
        return deadline
    }

    /// The writer thread.
    func run(sink: AuditFileSink) {
        var batch: [Item] = []
        batch.reserveCapacity(min(capacity, 4096))
        var outcomes: [(AuditWriter.Completion, Result<UInt64, AuditError>)] = []
        while true {
            pthread_mutex_lock(mutex)
            // Sleep until woken (a single record, a full queue, reopen, close) or until records
            // have gathered for `idleWait`: one write() per batch, not per record. With nothing
            // queued there is no deadline: an idle server's writer does not wake at all.
            var deadline: timespec?
            while !urgentPending && queuedRecords < Self.wakeAt && !closing && !reopenRequested {
                writerSleeping = true
                if items.isEmpty {
                    writerIdle = true
                    pthread_cond_wait(workAvailable, mutex)
                    deadline = nil
                    continue
                }
                if deadline == nil { deadline = Self.deadline(after: Self.idleWait) }
                if pthread_cond_timedwait(workAvailable, mutex, &deadline!) == ETIMEDOUT { break }
            }
            writerSleeping = false
            writerIdle = false
            urgentPending = false
            swap(&batch, &items)
            queuedRecords = 0
            let reopen = reopenRequested
            reopenRequested = false
            let settings = pendingSettings
            pendingSettings = nil
            let stopping = closing && batch.isEmpty
            pthread_mutex_unlock(mutex)

            if let settings { sink.apply(settings) }
            if reopen { sink.reopen() }
            if stopping {
                sink.close()
                locked {
                    statistics.syncs = sink.counters.syncs
                    finished = true
                }
                pthread_cond_broadcast(finishedCondition)
                return
            }
            if batch.isEmpty { continue }

            sink.process(batch, outcomes: &outcomes)
            batch.removeAll(keepingCapacity: true)
            locked {
                statistics.written = sink.counters.written
                statistics.failed = sink.counters.failed
                statistics.syncs = sink.counters.syncs
                statistics.rotations = sink.counters.rotations
                statistics.lastSeq = sink.nextSeq - 1
            }
            for (completion, result) in outcomes { completion(result) }
            outcomes.removeAll(keepingCapacity: true)
        }
    }
}

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

    private(set) var nextSeq: UInt64 = 1
    private var prev = AuditHash.genesis
    private(set) var counters = Counters()

    private var fd: Int32 = -1
    private var fileSize: Int64 = 0
    private var fileIdentity: (device: UInt64, inode: UInt64)?
    private var isRegularFile = true
    private var firstSeqInFile: UInt64 = 1
    private var failing = false
    private var lastFailureReport: UInt64 = 0
    private var lastPathCheck: UInt64 = 0

    /// The lines of the batch not yet written, encoded in place.
    private var chunk: [UInt8] = []

    init(configuration: AuditWriterConfiguration, onError: @escaping @Sendable (AuditError) -> Void) throws(AuditError) {
        self.maxFileSize = configuration.maxFileSize
        self.encoder = AuditLineEncoder(redactor: configuration.redactor)
        self.onError = onError
        self.onSessionLines = configuration.onSessionLines
        chunk.reserveCapacity(64 * 1024)
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
    }

    private var displayPath: String { path ?? "-" }

    private static func monotonicMilliseconds() -> UInt64 {
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
        nextSeq = line.seq + 1
        prev = line.hash
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
        if fd >= 0 && path != nil { FileIO.close(fd) }
        if path != nil { fd = -1 }
    }

    func apply(_ settings: AuditSinkSettings) {
        maxFileSize = settings.maxFileSize
        encoder = AuditLineEncoder(redactor: settings.redactor)
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
        guard fd >= 0 else { return }
        if path != nil {
            if FileIO.sync(fd) == nil { counters.syncs += 1 }
            closeDescriptor()
        }
    }

    // MARK: Writing

    /// Writes a batch; appends one outcome per record that has a completion.
    func process(_ batch: [WriterQueueItem], outcomes: inout [(AuditWriter.Completion, Result<UInt64, AuditError>)]) {
        var chunkItems: [(completion: AuditWriter.Completion?, seq: UInt64, durable: Bool)] = []
        var awaitingSync: [(AuditWriter.Completion?, UInt64)] = []
        var chunkStart = (seq: nextSeq, prev: prev)
        chunk.removeAll(keepingCapacity: true)
        checkPathIfDue()
        if fd < 0, let error = openFile(continuingChain: true) {
            fail(error)
            failRemaining(batch[...], error: error, outcomes: &outcomes)
            return
        }

        /// Writes the chunk; on failure fails its records (and rolls the chain back).
        func flushChunk() -> AuditError? {
            if chunk.isEmpty { return nil }
            let failure = chunk.withUnsafeBytes { FileIO.writeAll(fd, $0) }
            if let failure {
                if isRegularFile { _ = ftruncate(fd, off_t(fileSize)) }  // drop a partial line
                let error = AuditError(kind: .write, path: displayPath, code: failure, message: "write failed")
                for item in chunkItems { if let completion = item.completion { outcomes.append((completion, .failure(error))) } }
                counters.failed += UInt64(chunkItems.count)
                nextSeq = chunkStart.seq
                prev = chunkStart.prev
                chunkItems.removeAll()
                chunk.removeAll(keepingCapacity: true)
                return error
            }
            fileSize += Int64(chunk.count)
            counters.written += UInt64(chunkItems.count)
            for item in chunkItems {
                if item.durable {
                    awaitingSync.append((item.completion, item.seq))
                } else if let completion = item.completion {
                    outcomes.append((completion, .success(item.seq)))
                }
            }
            chunkItems.removeAll()
            chunk.removeAll(keepingCapacity: true)
            chunkStart = (nextSeq, prev)
            return nil
        }

        /// fsync (not for standard output, where written is as durable as it gets) and answer the
        /// durable records waiting for it.
        func syncAndAnswer() -> AuditError? {
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
            for (completion, seq) in awaitingSync {
                guard let completion else { continue }
                outcomes.append((completion, error.map { .failure($0) } ?? .success(seq)))
            }
            if error != nil { counters.failed += UInt64(awaitingSync.count) }
            awaitingSync.removeAll()
            return error
        }

        /// Takes the line just encoded at the end of the chunk (from `lineStart`), rotating first
        /// when it would not fit in the current file.
        func take(
            lineStart: Int, hash: AuditHash, sessionID: String?, timestamp: AuditTimestamp,
            completion: AuditWriter.Completion?, durable: Bool
        ) -> AuditError? {
            let lineLength = chunk.count - lineStart
            if isRegularFile && path != nil && fileSize + Int64(lineStart) > 0
                && fileSize + Int64(chunk.count) > maxFileSize
            {
                // Rare: set the line aside, write what precedes it, rotate, then put it back.
                let line = Array(chunk[lineStart...])
                chunk.removeSubrange(lineStart...)
                if let error = flushChunk() ?? syncAndAnswer() { return error }
                if let error = rotate() {
                    if fd < 0 { return error }
                    fail(error)  // could not rename: keep appending to the oversized file
                }
                chunk.append(contentsOf: line)
            }
            if onSessionLines != nil, let sessionID {
                sessionLines.append(AuditSessionLine(
                    sessionID: sessionID, seq: nextSeq, timestamp: timestamp,
                    line: String(decoding: chunk[(chunk.count - lineLength)..<(chunk.count - 1)], as: UTF8.self)))
            }
            chunkItems.append((completion, nextSeq, durable))
            nextSeq += 1
            prev = hash
            return nil
        }

        var batchError: AuditError?
        for (position, item) in batch.enumerated() {
            switch item {
            case .record(let record, let durable, let completion):
                let lineStart = chunk.count
                let hash = encoder.encode(record, seq: nextSeq, prev: prev, into: &chunk)
                batchError = take(
                    lineStart: lineStart, hash: hash, sessionID: record.sessionID, timestamp: record.timestamp,
                    completion: completion, durable: durable)
                if let batchError { failRemaining(batch[position...], error: batchError, outcomes: &outcomes) }
            case .encoded(let records):
                var taken = 0
                records.forEach { timestamp, sessionID, body in
                    let lineStart = chunk.count
                    let hash = AuditLineEncoder.encode(body: body, timestamp: timestamp, seq: nextSeq, prev: prev, into: &chunk)
                    batchError = take(
                        lineStart: lineStart, hash: hash, sessionID: sessionID, timestamp: timestamp, completion: nil,
                        durable: false)
                    if batchError == nil { taken += 1 }
                    return batchError == nil
                }
                if let batchError {
                    counters.failed += UInt64(records.count - taken)
                    failRemaining(batch[(position + 1)...], error: batchError, outcomes: &outcomes)
                }
            }
            if batchError != nil { break }
        }
        if batchError == nil {
            batchError = flushChunk()
        }
        if let error = syncAndAnswer(), batchError == nil { batchError = error }
        if batchError == nil && path != nil && isRegularFile, let status = FileIO.status(of: fd), status.links == 0 {
            batchError = AuditError(kind: .fileReplaced, path: displayPath, message: "the file was deleted while being written")
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
    }

    private func failRemaining(
        _ items: ArraySlice<WriterQueueItem>, error: AuditError,
        outcomes: inout [(AuditWriter.Completion, Result<UInt64, AuditError>)]
    ) {
        for item in items {
            if case .record(_, _, let completion?) = item { outcomes.append((completion, .failure(error))) }
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

