import ActAsAudit
import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsStore
import Foundation
import Logging
import Synchronization

/// Copies the request log's signed checkpoints into the store (SPEC §10.6), off the writer
/// thread. The store needs only the newest one (it bounds how far back the log can be cut), so
/// while the store is unavailable a newer checkpoint replaces the one waiting: the writer never
/// waits for the store and keeps nothing but one checkpoint in memory.
final class CheckpointCopier: Sendable {
    private let waiting = Mutex<AuditCheckpoint?>(nil)
    private let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation
    private let finishing = Atomic<Bool>(false)
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
        (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The writer's settings: signed with the live ring's current key, handed here when durable.
    static func settings(_ config: ActAsConfig, instanceID: String, live: LiveState, copier: CheckpointCopier) -> AuditCheckpointSettings {
        let reported = Atomic<Bool>(false)
        return AuditCheckpointSettings(
            every: config.audit.checkpointEvery,
            interval: .milliseconds(config.audit.checkpointInterval.milliseconds),
            instance: instanceID,
            sign: { covers, head, instance in
                guard let key = live.keyRing?.signing else {
                    if !reported.exchange(true, ordering: .relaxed) {
                        copier.logger.error("audit log: no assertion key to sign a checkpoint with yet; it is written once one is loaded")
                    }
                    return nil
                }
                do {
                    return try CheckpointSigner.sign(covers: covers, head: head, instance: instance, with: key)
                } catch {
                    copier.logger.error("audit log: cannot sign a checkpoint: \(error)")
                    return nil
                }
            },
            onCheckpoint: { copier.offer($0) })
    }

    func offer(_ checkpoint: AuditCheckpoint) {
        waiting.withLock { current in
            if current == nil || current!.seq < checkpoint.seq { current = checkpoint }
        }
        signal.yield()
    }

    /// After the writer closed: the last checkpoint is stored, then `run` returns.
    func finish() {
        finishing.store(true, ordering: .relaxed)
        signal.finish()
    }

    /// Runs until `finish()`. A failed write is retried (with the newest checkpoint by then) until
    /// it succeeds; after `finish()`, five more attempts, then it is reported.
    func run(into store: any Store) async {
        for await _ in signals { await storeWaiting(into: store) }
        await storeWaiting(into: store)
    }

    private func storeWaiting(into store: any Store) async {
        var failures = 0
        while let checkpoint = waiting.withLock({ $0 }) {
            do {
                try await store.saveCheckpoint(checkpoint)
                // Clear the slot unless a newer checkpoint arrived meanwhile.
                waiting.withLock { if $0?.seq == checkpoint.seq { $0 = nil } }
                if failures > 0 { logger.info("audit log: checkpoint \(checkpoint.seq) stored after \(failures) failed attempts") }
                failures = 0
            } catch {
                failures += 1
                if failures == 1 || failures % 60 == 0 {
                    logger.error("audit log: cannot store checkpoint \(checkpoint.seq) (retrying): \(error)")
                }
                if finishing.load(ordering: .relaxed) && failures >= 5 {
                    logger.error("audit log: checkpoint \(checkpoint.seq) is in the log but not in the store")
                    return
                }
                try? await Task.sleep(for: .milliseconds(min(200 * failures, 5000)))
            }
        }
    }
}
