import NIOCore

/// Issue 21: how many of an event loop's upstream connections exchanges still streaming their
/// request body may hold. A body larger than the proxy's buffer takes a connection once the
/// buffer is full and may then trickle for as long as `body_timeout` allows per byte; without a
/// cap, enough such clients hold the whole pool and normal requests wait for it. Over the cap an
/// exchange keeps its buffer (reading paused) and waits here, first come first served.
///
/// `Waiter` identifies a waiting exchange; whether it still waits is asked when its turn comes
/// (`isWaiting`), so an exchange that ended need not be found and removed from the queue.
public struct StreamingBodySlots<Waiter> {
    public private(set) var capacity: Int
    public private(set) var held = 0
    private var waiters = CircularBuffer<Waiter>()

    /// Half of the loop's pool share, at least one.
    public static func capacity(poolShare: Int) -> Int { max(1, poolShare / 2) }

    public init(poolShare: Int) {
        capacity = Self.capacity(poolShare: poolShare)
    }

    public var waiting: Int { waiters.count }

    /// Takes a slot, or queues `waiter` (true: taken). Newcomers queue behind earlier waiters.
    public mutating func take(orQueue waiter: Waiter) -> Bool {
        if held < capacity, waiters.isEmpty {
            held += 1
            return true
        }
        waiters.append(waiter)
        return false
    }

    /// Gives a slot back. Returns the waiter that now holds it (it must start streaming or
    /// release it), after dropping waiters that no longer wait.
    public mutating func release(isWaiting: (Waiter) -> Bool) -> Waiter? {
        guard held > 0 else { return nil }  // never below zero, whatever a caller does
        held -= 1
        return grant(isWaiting: isWaiting).first
    }

    /// A reload changed the pool share. Returns the waiters that now hold a slot.
    public mutating func update(poolShare: Int, isWaiting: (Waiter) -> Bool) -> [Waiter] {
        capacity = Self.capacity(poolShare: poolShare)
        return grant(isWaiting: isWaiting)
    }

    /// Drops waiters that no longer wait (called as the queue grows, so exchanges that ended
    /// while queued cannot pile up while the slots stay taken).
    public mutating func prune(isWaiting: (Waiter) -> Bool) {
        var kept = CircularBuffer<Waiter>(initialCapacity: waiters.count)
        for waiter in waiters where isWaiting(waiter) { kept.append(waiter) }
        waiters = kept
    }

    private mutating func grant(isWaiting: (Waiter) -> Bool) -> [Waiter] {
        var granted: [Waiter] = []
        while held < capacity, let next = waiters.popFirst() {
            guard isWaiting(next) else { continue }
            held += 1
            granted.append(next)
        }
        return granted
    }
}

/// One exchange's part in `StreamingBodySlots`: it holds a slot at most once and gives it back
/// exactly once, however many of its exit paths run.
public enum StreamingSlotState: Equatable, Sendable {
    case none
    case waiting
    case held

    /// Leaves the slot or the queue. True when a held slot must be given back.
    public mutating func leave() -> Bool {
        defer { self = .none }
        return self == .held
    }
}
