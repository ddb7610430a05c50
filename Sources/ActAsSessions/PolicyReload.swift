import ActAsConfig
import ActAsCore
import ActAsStore
import Foundation

/// What a reloaded policy means for one running impersonation session.
public enum PolicyReloadDecision: Sendable, Equatable {
    /// Still allowed, and its end stays.
    case keep
    /// A lower `max_duration`: the session now ends at this instant (start + the new maximum,
    /// whole seconds, as every advertised end is).
    case shorten(to: Date)
    /// The new rules end it now (`expired` past the new maximum, `actor_lost_permission` when
    /// the actor's role may no longer act as the target, `consent_revoked` when consent became
    /// required and there is none, …).
    case end(EndReason)

    /// Pure: the same rules the request path applies, with the new policy. A session keeps its
    /// end unless the new maximum is shorter (a higher maximum never lengthens a running one).
    public static func decide(
        _ session: ImpersonationSession, policy: ImpersonationPolicy, actor: User?, target: User?, targetConsent: Consent?, now: Date
    ) -> PolicyReloadDecision {
        var capped = session
        let longest = (session.startedAt.timeIntervalSince1970 + policy.rules.maxDuration).rounded(.down)
        if session.expiresAt.timeIntervalSince1970 > longest {
            capped.expiresAt = Date(timeIntervalSince1970: longest)
        }
        if let reason = policy.endReason(for: capped, actor: actor, target: target, targetConsent: targetConsent, now: now) {
            return .end(reason)
        }
        return capped.expiresAt == session.expiresAt ? .keep : .shorten(to: capped.expiresAt)
    }
}

extension Impersonations {
    public struct PolicyReloadOutcome: Sendable, Equatable {
        public var ended = 0
        public var shortened = 0
    }

    /// SIGHUP: every decision from here on uses `policy`, and running sessions are judged by it
    /// at once, so none is forwarded again under rules that no longer allow it (the request
    /// path's per-connection memo is only invalidated by a change of the live state, which
    /// ending or shortening a session is).
    @discardableResult
    public func apply(policy: ImpersonationPolicy, now: Date = Date()) -> PolicyReloadOutcome {
        currentPolicy.withLock { $0 = policy }
        var outcome = PolicyReloadOutcome()
        let (open, users, consents) = live.read { ($0.impersonations, $0.users, $0.consents) }
        for session in open.values {
            switch PolicyReloadDecision.decide(
                session, policy: policy, actor: users[session.actorID], target: users[session.targetID],
                targetConsent: consents[session.targetID], now: now)
            {
            case .keep:
                continue
            case .end(let reason):
                if end(session.id, reason: reason, context: EventContext(), now: now) { outcome.ended += 1 }
            case .shorten(let end):
                var shortened = session
                shortened.expiresAt = end
                // Live first (the request path enforces the new end from here), then the store.
                // An end that raced in between must not be undone by this write.
                guard live.apply(impersonationID: session.id, session: shortened) != nil else {
                    live.apply(impersonationID: session.id, session: nil)
                    continue
                }
                outcome.shortened += 1
                let store = self.store
                Task { try? await store.updateImpersonation(shortened) }
            }
        }
        return outcome
    }
}
