import Synchronization

/// Gathers the lines of impersonation sessions that became durable (handed over by the sync
/// thread) and delivers them in large batches, at most one batch per `gatherFor`: the store
/// copy is one transaction — one commit, one fsync of its own — per batch, not per group
/// commit. The copy is for the console's session pages; the log file is the record, so a
/// fraction of a second's delay costs nothing while a commit per fsync round cost a third of
/// an impersonated request's CPU.
///
/// `offer` only takes a lock and appends; it rings the consumer only when the buffer was
/// empty, so under load the sync thread never wakes a task.
public final class AuditSessionLineBatches: Sendable {
    private struct State {
        var lines: [AuditSessionLine] = []
        var finished = false
    }

    public let gatherFor: Duration
    private let state = Mutex(State())
    private let doorbell: AsyncStream<Void>.Continuation
    private let rings: AsyncStream<Void>

    public init(gatherFor: Duration = .milliseconds(100)) {
        self.gatherFor = gatherFor
        (rings, doorbell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// From any thread; must not block (the sync thread calls it).
    public func offer(_ lines: [AuditSessionLine]) {
        if lines.isEmpty { return }
        let ring = state.withLock { state -> Bool in
            let wasEmpty = state.lines.isEmpty
            state.lines.append(contentsOf: lines)
            return wasEmpty && !state.finished
        }
        if ring { doorbell.yield() }
    }

    /// No more lines will come; `run` delivers what is left and returns.
    public func finish() {
        state.withLock { $0.finished = true }
        doorbell.finish()
    }

    /// Everything offered so far, removed from the buffer.
    public func take() -> [AuditSessionLine] {
        state.withLock { state in
            var taken: [AuditSessionLine] = []
            swap(&taken, &state.lines)
            return taken
        }
    }

    /// Calls `deliver` with everything gathered, waiting `gatherFor` after the first line of a
    /// batch, until `finish()`; then delivers the rest. One caller at a time.
    public func run(_ deliver: ([AuditSessionLine]) async -> Void) async {
        for await _ in rings {
            // Not cancellable on purpose: the lines are delivered even when the task is cancelled.
            try? await Task.sleep(for: gatherFor)
            let lines = take()
            if !lines.isEmpty { await deliver(lines) }
        }
        let rest = take()
        if !rest.isEmpty { await deliver(rest) }
    }
}
