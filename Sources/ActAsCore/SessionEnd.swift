import Foundation

extension ImpersonationPolicy {
    /// Why an open impersonation session must end before this request, or nil while it is still
    /// valid (SPEC §7). Runs on every impersonated request: comparisons only, no allocation.
    ///
    /// `target` and `actor` are the current directory records (nil = gone), `targetConsent` the
    /// target's current consent. When several reasons hold, the one reported is:
    /// 1. `target_deleted` (also when the record is gone or is not the session's target), then
    ///    `target_suspended`;
    /// 2. `actor_lost_permission`: the actor is gone (or not the session's), may no longer sign
    ///    in, lost the impersonator role, or no longer outranks or (when scoped) covers the target;
    /// 3. of the timed reasons, the one that happened first: `consent_revoked` at `revokedAt`,
    ///    `consent_expired` at the consent's `expiresAt`, `expired` at the session's; on a tie
    ///    the more specific wins in that order. A missing consent (or one for someone else)
    ///    counts as revoked.
    /// Status changes come first because their time is unknown and they are the most pressing
    /// to explain; the timed ones are told apart by when they happened.
    /// A session that is already closed reports its recorded reason.
    public func endReason(
        for session: ImpersonationSession, actor: User?, target: User?, targetConsent: Consent?, now: Date
    ) -> EndReason? {
        if session.endedAt != nil { return session.endReason ?? .endedByOperator }

        // A record that is not the session's own counts as gone (fail closed on a caller's mix-up).
        guard let target, target.id == session.targetID, target.status != .deleted else { return .targetDeleted }
        if target.status == .suspended { return .targetSuspended }

        // The same tests as starting (`not_permitted`, `hierarchy`, `scope`), one role lookup.
        guard let actor, actor.id == session.actorID, actor.status.maySignIn,
              let standing = roles.entry(actor.role), standing.mayImpersonate,
              standing.rank < roles.rank(of: target.role),
              !standing.isScoped || OrgUnit.covers(actor.orgUnit, target.orgUnit)
        else { return .actorLostPermission }

        // Timed reasons: keep the earliest that has happened; candidates come most specific
        // first and only a strictly earlier one replaces them.
        var reason: EndReason?
        var happenedAt = Date.distantFuture
        if rules.consentRequired {
            if let consent = targetConsent, consent.userID == target.id {
                if let revokedAt = consent.revokedAt {
                    reason = .consentRevoked
                    happenedAt = min(revokedAt, now)
                }
                // In whole seconds, as shown (and as a session it caps ends): see `Consent.end`.
                if consent.end <= now && consent.end < happenedAt {
                    reason = .consentExpired
                    happenedAt = consent.end
                }
            } else {
                reason = .consentRevoked
                happenedAt = now
            }
        }
        if session.expiresAt <= now && session.expiresAt < happenedAt { reason = .expired }
        return reason
    }
}
