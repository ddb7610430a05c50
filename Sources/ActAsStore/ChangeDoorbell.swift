/// Wakes the change-feed reader before its next poll is due: PostgreSQL's NOTIFY rings it, so
/// another instance's change is read at once rather than at the next 200 ms tick. A ring while
/// the reader is busy is kept, so the reader reads again right after (none is lost).
public actor ChangeDoorbell {
    private var rung = false
    private var waiter: CheckedContinuation<Void, Never>?

    public init() {}

    public nonisolated func ring() {
        Task { await self.ringNow() }
    }

    private func ringNow() {
        if let waiter {
            self.waiter = nil
            waiter.resume()
        } else {
            rung = true
        }
    }

    /// Returns at the next ring (at once if one came since the last wait) or after `limit`.
    func wait(upTo limit: Duration) async {
        if rung {
            rung = false
            return
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: limit)
            await self?.timeUp()
        }
        await withCheckedContinuation { waiter = $0 }
        timer.cancel()
        rung = false
    }

    private func timeUp() {
        if let waiter {
            self.waiter = nil
            waiter.resume()
        }
    }
}
