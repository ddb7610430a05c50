import ActAsCore
import ActAsPages
import ActAsStore
import Foundation

/// What the proxy's own refusal page adds while impersonating (SPEC §7: read-only and hidden
/// path refusals "carry the banner and a link back"): the banner, whose Exit returns to the
/// same place, and the link back.
struct ImpersonationRefusalPage {
    var banner: BannerInfo
    var back: String
}

extension ImpersonationRefusalPage {
    /// `current` is the refused path when it was a GET (going back there would be refused again).
    init?(session: ImpersonationSession, principal: LiveState.Principal, settings: ProxySettings,
          referer: String?, host: String?, current: String?, now: Date = Date()) {
        guard let target = principal.target else { return nil }
        back = BackLink.from(referer: referer, host: host, current: current)
        let cap = min(session.startedAt.addingTimeInterval(settings.maxImpersonation), principal.targetConsent?.expiresAt ?? .distantFuture)
        banner = BannerInfo(
            targetName: target.displayName, targetUsername: target.username, mode: session.mode, sessionID: session.id,
            startedAt: session.startedAt, expiresAt: session.expiresAt, now: now, warnBeforeEnd: settings.warnBeforeEnd,
            csrfToken: principal.session?.csrfToken ?? "", path: back, extendable: session.expiresAt < cap)
    }
}
