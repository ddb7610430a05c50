import ActAsCore
import ActAsCrypto
import Foundation
import Logging

/// Keeps a `LiveState` in step with the store: a snapshot at start, then the change feed,
/// polled. (SQLite has no cross-process notifications; for PostgreSQL the same loop is woken by
/// LISTEN/NOTIFY.) Changes made in this process are applied directly by their writer before
/// the request returns; the feed brings them again, harmlessly.
public final class StateSync: Sendable {
    public let store: any Store
    public let state: LiveState
    private let position = PositionBox()
    private let reading = TransactionGate()
    /// Change rows older than this are pruned; a reader further behind reloads a snapshot.
    static let changeRetention: TimeInterval = 3600
    /// An open impersonation session this process learned had ended elsewhere.
    private let onImpersonationEnded: @Sendable (ImpersonationSession) -> Void
    /// A consent changed elsewhere (`actas consent …`): (before, after).
    private let onConsentChanged: @Sendable (Consent?, Consent?) -> Void

    /// Rung by PostgreSQL's NOTIFY: read the feed now rather than at the next tick.
    public let doorbell = ChangeDoorbell()
    /// Whether the last read of the feed reached the store (SPEC §10.2: `/readyz`, `store.grace`).
    public let health: StoreHealth

    public init(
        store: any Store, state: LiveState, health: StoreHealth = StoreHealth(),
        onImpersonationEnded: @escaping @Sendable (ImpersonationSession) -> Void = { _ in },
        onConsentChanged: @escaping @Sendable (Consent?, Consent?) -> Void = { _, _ in }
    ) {
        self.store = store
        self.state = state
        self.health = health
        self.onImpersonationEnded = onImpersonationEnded
        self.onConsentChanged = onConsentChanged
    }

    public func loadSnapshot(now: Date = Date()) async throws {
        let snapshot = try await store.snapshot(now: now)
        state.load(snapshot, now: now)
        await position.set(snapshot.changeID)
    }

    /// One poll: applies every change since the last one. Returns how many were applied.
    @discardableResult
    public func poll(now: Date = Date()) async throws -> Int {
        // One reader at a time: the timer and `POST /sync` must not apply a change twice (an
        // ended session would be reported twice).
        try await serialized { try await pollLocked(now: now) }
    }

    /// Applies the feed until at least change `target` (SPEC §10.1: a command waits for this
    /// on every instance). Returns the position reached, which is below `target` only when
    /// the store has no such change yet.
    public func catchUp(to target: Int64, now: Date = Date()) async throws -> Int64 {
        try await serialized {
            while await position.value < target {
                if try await pollLocked(now: now) == 0 { break }
            }
            return await position.value
        }
    }

    private func serialized<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await reading.lock()
        do {
            let result = try await body()
            await reading.unlock()
            return result
        } catch {
            await reading.unlock()
            throw error
        }
    }

    /// The change feed position this state reflects.
    public var appliedChange: Int64 {
        get async { await position.value }
    }

    private func pollLocked(now: Date) async throws -> Int {
        let after = await position.value
        guard let changes = try await store.changes(after: after, limit: 1000) else {
            // Fell behind the feed's retention: start over from a snapshot.
            try await loadSnapshot(now: now)
            return -1
        }
        for change in changes {
            try await apply(change, now: now)
            await position.set(change.id)
        }
        return changes.count
    }

    func apply(_ change: Change, now: Date) async throws {
        switch change.kind {
        case .user:
            state.apply(userID: change.key, user: try await store.user(id: change.key))
        case .session:
            let session = try await store.session(idHash: change.key)
            state.apply(sessionHash: change.key, session: session.flatMap { $0.expiresAt > now ? $0 : nil })
        case .token:
            state.apply(tokenHash: change.key, token: try await store.token(hash: change.key))
        case .key:
            state.apply(keys: try await store.signingKeys(), now: now)
        case .consent:
            let consent = try await store.consent(userID: change.key)
            let before = state.read { $0.consents[change.key] }
            state.apply(consentOf: change.key, consent: consent)
            if before != consent { onConsentChanged(before, consent) }
        case .impersonation:
            let session = try await store.impersonation(id: change.key)
            let previous = state.apply(impersonationID: change.key, session: session)
            if previous != nil, let session, !session.isOpen { onImpersonationEnded(session) }
        }
    }

    /// Polls until cancelled. Store errors are reported and retried: the cached state keeps
    /// serving (fail closed for anything that needs the store is the callers' business).
    public func run(interval: Duration = .milliseconds(200), logger: Logger) async {
        var failing = false
        var lastHousekeeping = ContinuousClock.now
        while !Task.isCancelled {
            do {
                try await poll()
                health.contact()
                if failing {
                    logger.info("store reachable again; change feed resumed")
                    failing = false
                }
                if ContinuousClock.now - lastHousekeeping > .seconds(60) {
                    lastHousekeeping = ContinuousClock.now
                    try await housekeeping(now: Date())
                }
            } catch {
                if !failing { logger.error("store change feed failed: \(error)") }
                failing = true
                health.lost()
            }
            await doorbell.wait(upTo: interval)
        }
    }

    func housekeeping(now: Date) async throws {
        state.pruneExpired(now: now)
        _ = try await store.deleteExpiredSessions(before: now)
        try await store.pruneChanges(before: now.addingTimeInterval(-Self.changeRetention))
        try await store.deleteSigningKeys(retiredBefore: now.addingTimeInterval(-state.keyGracePeriod))
        // Retired keys age out of the JWKS even when nothing changed.
        state.apply(keys: try await store.signingKeys(), now: now)
    }
}

actor PositionBox {
    private(set) var value: Int64 = 0
    func set(_ value: Int64) { self.value = value }
}

/// The assertion key ring in the store: created on first start, rotated by `actas keys rotate`.
public enum KeyManager {
    /// Makes sure a signing key exists; safe when several processes start at once.
    public static func ensureSigningKey(_ store: any Store, now: Date = Date()) async throws {
        if try await store.signingKeys().contains(where: { $0.retiredAt == nil }) { return }
        let (raw, key) = AssertionKey.generate()
        _ = try await store.addSigningKey(SigningKeyRecord(kid: key.kid, privateKey: raw, createdAt: now), retiring: nil, at: now)
    }

    /// A new signing key; the old one stays published for the grace period. Returns the new kid.
    public static func rotate(_ store: any Store, now: Date = Date()) async throws -> (new: String, retired: String?) {
        for _ in 0..<5 {
            let current = try await store.signingKeys().last(where: { $0.retiredAt == nil })?.kid
            let (raw, key) = AssertionKey.generate()
            if try await store.addSigningKey(SigningKeyRecord(kid: key.kid, privateKey: raw, createdAt: now), retiring: current, at: now) {
                return (key.kid, current)
            }
        }
        throw StoreError.conflict("another process kept rotating the key at the same time; try again")
    }
}
