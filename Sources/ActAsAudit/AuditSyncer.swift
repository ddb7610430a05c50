#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A log file as the sync thread sees it: its own descriptor (a `dup` of the writer's), closed
/// when the last batch waiting for it is answered, so the writer may close, rotate or reopen
/// its file meanwhile without the sync thread ever syncing a reused descriptor number.
final class SyncedFile: Sendable {
    let descriptor: Int32
    let displayPath: String
    let isRegular: Bool

    init?(duplicating fd: Int32, displayPath: String, isRegular: Bool) {
        let copy = dup(fd)
        guard copy >= 0 else { return nil }
        descriptor = copy
        self.displayPath = displayPath
        self.isRegular = isRegular
    }

    deinit { FileIO.close(descriptor) }
}

/// Records written to a file and waiting for it to be durable.
struct SyncRequest {
    var file: SyncedFile
    var completions: [(AuditWriter.Completion?, UInt64)]
    /// Lines of impersonation sessions in the batch, handed on once it is durable.
    var sessionLines: [AuditSessionLine]
}

/// Group commit on its own thread (SPEC §8: an impersonated response waits until its record is
/// durable). The writer thread encodes and `write`s; this thread takes everything written since
/// its last `fsync` began, calls `fsync` once for all of it, and answers those records. While
/// one `fsync` runs the writer keeps writing, so the next `fsync` starts the moment this one
/// returns and covers every record that arrived meanwhile; the disk is never idle while records
/// wait, and encoding never waits for the disk.
///
/// A record is answered `.success` only after an `fsync` that began after its `write` returned,
/// and only if that `fsync` succeeded and the file still has a name (a deleted file's records
/// fail). A failure is reported once, and the writer reopens the path before its next batch.
final class AuditSyncer: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let idleCondition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    // Guarded by `mutex`.
    private var pending: [SyncRequest] = []
    private var busy = false
    private var stopping = false
    private var stopped = false
    private var failure: AuditError?

    private let onSessionLines: (@Sendable ([AuditSessionLine]) -> Void)?
    private let onError: @Sendable (AuditError) -> Void
    let syncs = Atomic<UInt64>(0)
    let failed = Atomic<UInt64>(0)

    init(onSessionLines: (@Sendable ([AuditSessionLine]) -> Void)?, onError: @escaping @Sendable (AuditError) -> Void) {
        self.onSessionLines = onSessionLines
        self.onError = onError
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(workAvailable, nil)
        pthread_cond_init(idleCondition, nil)
    }

    deinit {
        pthread_cond_destroy(idleCondition)
        pthread_cond_destroy(workAvailable)
        pthread_mutex_destroy(mutex)
        idleCondition.deallocate()
        workAvailable.deallocate()
        mutex.deallocate()
    }

    func start() {
        let thread = Thread { [self] in
            FileIO.nameCurrentThread("actas-audit-sync")
            run()
        }
        thread.start()
    }

    /// From the writer thread, after the records' `write` returned.
    func submit(_ request: SyncRequest) {
        pthread_mutex_lock(mutex)
        pending.append(request)
        let wake = !busy
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(workAvailable) }
    }

    /// A failed `fsync` (or a deleted file) since the last call: the writer closes its file and
    /// reopens the path.
    func takeFailure() -> AuditError? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let taken = failure
        failure = nil
        return taken
    }

    /// Answers everything submitted, then ends the thread. Blocks.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_signal(workAvailable)
        while !stopped { pthread_cond_wait(idleCondition, mutex) }
        pthread_mutex_unlock(mutex)
    }

    private func run() {
        var taken: [SyncRequest] = []
        var reportedFailure = false
        while true {
            pthread_mutex_lock(mutex)
            busy = false
            while pending.isEmpty && !stopping { pthread_cond_wait(workAvailable, mutex) }
            if pending.isEmpty {
                stopped = true
                pthread_cond_broadcast(idleCondition)
                pthread_mutex_unlock(mutex)
                return
            }
            busy = true
            swap(&taken, &pending)
            pthread_mutex_unlock(mutex)

            // Usually one file; after a rotation or reopen, the old one and the new one.
            var outcomes: [ObjectIdentifier: AuditError?] = [:]
            for request in taken where outcomes[ObjectIdentifier(request.file)] == nil {
                outcomes[ObjectIdentifier(request.file)] = sync(request.file)
            }
            let errors = outcomes.values.compactMap { $0 }
            if let error = errors.first {
                // Before the completions: a client answered 503 may retry at once, and its record
                // must go to a reopened file.
                pthread_mutex_lock(mutex)
                failure = error
                pthread_mutex_unlock(mutex)
                if !reportedFailure { onError(error) }  // the writer reports later ones, rate-limited
                reportedFailure = true
            } else {
                reportedFailure = false
            }
            var lines: [AuditSessionLine] = []
            for request in taken {
                let error = outcomes[ObjectIdentifier(request.file)] ?? nil
                if error == nil { lines.append(contentsOf: request.sessionLines) }
                for (completion, seq) in request.completions {
                    completion?(error.map { .failure($0) } ?? .success(seq))
                }
                if error != nil { failed.add(UInt64(request.completions.count), ordering: .relaxed) }
            }
            if !lines.isEmpty { onSessionLines?(lines) }
            taken.removeAll(keepingCapacity: true)
        }
    }

    private func sync(_ file: SyncedFile) -> AuditError? {
        if let code = FileIO.sync(file.descriptor) {
            return AuditError(kind: .sync, path: file.displayPath, code: code, message: "fsync failed")
        }
        syncs.add(1, ordering: .relaxed)
        if file.isRegular, let status = FileIO.status(of: file.descriptor), status.links == 0 {
            return AuditError(kind: .fileReplaced, path: file.displayPath, message: "the file was deleted while being written")
        }
        return nil
    }
}
