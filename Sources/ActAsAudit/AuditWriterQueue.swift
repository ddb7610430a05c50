#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization
/// The reloadable part of the writer's configuration, handed to the writer thread.
struct AuditSinkSettings: Sendable {
    var redactor: Redactor
    var maxFileSize: Int64
}

/// What the queue holds: a record, or a round's worth of records an event loop encoded.
enum WriterQueueItem {
    case record(AuditRecord, durable: Bool, completion: AuditWriter.Completion?)
    case encoded(EncodedAuditRecords)
    /// A signed checkpoint the writer thread adds itself (interval, reopen, shutdown).
    case checkpoint

    var recordCount: Int {
        switch self {
        case .record: return 1
        case .encoded(let records): return records.count
        case .checkpoint: return 0
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
    /// Its counts are live (it answers durable records on its own thread); set before the
    /// writer thread starts.
    var syncer: AuditSyncer?

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
            if let syncer {
                copy.syncs += syncer.syncs.load(ordering: .relaxed)
                copy.failed += syncer.failed.load(ordering: .relaxed)
            }
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
        /// Writes a checkpoint now if records were written since the last one.
        func seal() {
            sink.process([.checkpoint], outcomes: &outcomes)
            for (completion, result) in outcomes { completion(result) }
            outcomes.removeAll(keepingCapacity: true)
        }
        while true {
            // The interval checkpoint's deadline, read before sleeping (the sink is this thread's).
            let checkpointWait = sink.checkpointDeadline.map { due -> Int in
                let now = AuditFileSink.monotonicMilliseconds()
                return due > now ? Int(due - now) * 1_000_000 : 0
            }
            pthread_mutex_lock(mutex)
            // Sleep until woken (a single record, a full queue, reopen, close) or until records
            // have gathered for `idleWait`: one write() per batch, not per record. With nothing
            // queued the only deadline is the interval checkpoint's: an idle server's writer
            // wakes at most once after its last record.
            var deadline: timespec?
            while !urgentPending && queuedRecords < Self.wakeAt && !closing && !reopenRequested {
                writerSleeping = true
                if items.isEmpty {
                    writerIdle = true
                    if let checkpointWait {
                        var due = Self.deadline(after: checkpointWait)
                        if pthread_cond_timedwait(workAvailable, mutex, &due) == ETIMEDOUT { break }
                    } else {
                        pthread_cond_wait(workAvailable, mutex)
                    }
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
            // No checkpoint for a reopen: the next one, in the new file, covers the moved one's records.
            if reopen { sink.reopen() }
            if stopping {
                seal()
                sink.close()
                locked {
                    statistics.written = sink.counters.written
                    statistics.failed = sink.counters.failed
                    statistics.syncs = sink.counters.syncs
                    statistics.lastSeq = sink.nextSeq - 1
                    finished = true
                }
                pthread_cond_broadcast(finishedCondition)
                return
            }
            if sink.checkpointDue { batch.append(.checkpoint) }
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
