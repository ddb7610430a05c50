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
    /// Signed checkpoints (SPEC §10.6); nil: none.
    public var checkpoints: AuditCheckpointSettings?
    /// `listen.instance_id` as resolved, written in every record as `"instance"` (SPEC §10.2).
    public var instance: String?

    public init(
        destination: AuditDestination, redactor: Redactor, maxFileSize: Int64 = 100 << 20, queueCapacity: Int = 16_384,
        onSessionLines: (@Sendable ([AuditSessionLine]) -> Void)? = nil, checkpoints: AuditCheckpointSettings? = nil
    ) {
        self.destination = destination
        self.redactor = redactor
        self.maxFileSize = maxFileSize
        self.queueCapacity = max(queueCapacity, 1)
        self.onSessionLines = onSessionLines
        self.checkpoints = checkpoints
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
        queue.syncer = sink.syncer
        self.queue = queue
        sink.syncer?.start()
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
    public var encoder: AuditLineEncoder { AuditLineEncoder(redactor: configuration.redactor, instance: configuration.instance) }

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
