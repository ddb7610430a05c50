import Foundation

/// When a failed delivery is tried again: 1 s after the first failure, doubling, at most
/// `cap` apart; never after `retryFor` from the event (then it is given up).
public struct RetrySchedule: Sendable, Equatable {
    public var retryFor: TimeInterval
    public var cap: TimeInterval

    public init(retryFor: TimeInterval, cap: TimeInterval = 600) {
        self.retryFor = retryFor
        self.cap = cap
    }

    /// Delay after `attempts` failed attempts (1 → 1 s, 2 → 2 s, 3 → 4 s, …).
    public func delay(afterAttempts attempts: Int) -> TimeInterval {
        let exponent = min(max(attempts - 1, 0), 30)
        return min(cap, pow(2, Double(exponent)))
    }

    /// The next attempt's time, or nil when the event's `retry_for` is over by then.
    public func nextAttempt(createdAt: Date, attempts: Int, now: Date) -> Date? {
        let deadline = createdAt.addingTimeInterval(retryFor)
        guard now < deadline else { return nil }
        // The last attempt falls on the deadline rather than past it.
        return min(now.addingTimeInterval(delay(afterAttempts: attempts)), deadline)
    }
}
