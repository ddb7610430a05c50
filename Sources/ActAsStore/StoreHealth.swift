import Foundation
import Synchronization

/// Whether the store answers, as the change-feed reader last found it (SPEC §9, §10.2): the
/// admin `/readyz` answers 503 while it does not, and requests that need only the in-memory
/// state go on for `store.grace` after the last successful contact, then fail closed.
public final class StoreHealth: Sendable {
    private struct State {
        var lastContact: ContinuousClock.Instant
        var reachable = true
    }

    private let state: Mutex<State>
    /// `store.grace`.
    public let grace: Duration

    public init(grace: Duration = .seconds(10), now: ContinuousClock.Instant = .now) {
        self.grace = grace
        state = Mutex(State(lastContact: now))
    }

    /// A read or write succeeded. Returns true when the store had been unreachable.
    @discardableResult
    public func contact(at now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { state in
            state.lastContact = now
            defer { state.reachable = true }
            return !state.reachable
        }
    }

    /// A read failed for want of the store. Returns true when it had been reachable.
    @discardableResult
    public func lost() -> Bool {
        state.withLock { state in
            defer { state.reachable = false }
            return state.reachable
        }
    }

    public var isReachable: Bool { state.withLock { $0.reachable } }

    /// Whether the in-memory state may still be trusted: the store answered within `grace`.
    /// Asked on every identified request: the clock is read only while the store is unreachable.
    public func withinGrace(at now: ContinuousClock.Instant? = nil) -> Bool {
        let lastContact: ContinuousClock.Instant? = state.withLock { $0.reachable ? nil : $0.lastContact }
        guard let lastContact else { return true }
        return (now ?? .now) - lastContact <= grace
    }
}
