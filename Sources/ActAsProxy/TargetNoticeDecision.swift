import ActAsCore
import ActAsPages
import ActAsStore
import Foundation

extension RequestPipeline {
    /// SPEC §10.5: which notices a request's page carries — one per open impersonation of the
    /// person who signed in, on their document loads through a browser sign-in, as themself.
    /// None while they act as someone else (their pages go out as that person, under the
    /// banner), none for API tokens (no page, no CSRF token for the forms), none for a
    /// script's fetch. An impersonation past its end shows nothing even before the sweep ends it.
    static func targetNotices(_ principal: LiveState.Principal, impersonating: Bool, pageLoad: Bool, now: Date) -> [TargetNotice] {
        guard pageLoad, !impersonating, principal.impersonation == nil, principal.session != nil, !principal.actingAsMe.isEmpty else {
            return []
        }
        let consentActive = principal.ownConsent.map { $0.revokedAt == nil && $0.expiresAt > now } ?? false
        return principal.actingAsMe
            .filter { $0.session.isOpen && $0.session.targetID == principal.user.id && $0.session.expiresAt > now }
            .map { TargetNotice(session: $0.session, actor: $0.actor, consentRevocable: consentActive) }
    }
}
