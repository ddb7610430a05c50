import ActAsCore
import ActAsPages
import ActAsStore
import Foundation
import Testing
@testable import ActAsProxy

/// SPEC §10.5: which notices a request's page carries.
@Suite("Target notice decision")
struct TargetNoticeDecisionTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let emma = User(id: "usr_emma", username: "emma", email: "e@example.com", name: "Emma", role: "employee", groups: [],
                           orgUnit: "acme", status: .active, lastLogin: nil, passwordHash: nil, createdAt: now, updatedAt: now)
    static let ada = User(id: "usr_ada", username: "ada", email: "a@example.com", name: "Ada Admin", role: "super_admin", groups: [],
                          orgUnit: "acme", status: .active, lastLogin: nil, passwordHash: nil, createdAt: now, updatedAt: now)

    static func session(_ id: String = "imp_1", expires: TimeInterval = 600) -> ImpersonationSession {
        ImpersonationSession(id: id, actorID: ada.id, targetID: emma.id, reason: "ticket 1", mode: .readOnly,
                             startedAt: now - 60, expiresAt: now + expires)
    }

    static func principal(acting: [ImpersonationSession] = [session()], consent: Consent? = nil, browser: Bool = true) -> LiveState.Principal {
        let signIn = SignInSession(idHash: "h", userID: emma.id, csrfToken: "csrf", createdAt: now, expiresAt: now + 3600, clientIP: "192.0.2.1")
        var principal = LiveState.Principal(user: emma, session: browser ? signIn : nil)
        principal.actingAsMe = acting.map { LiveState.ActingAsMe(session: $0, actor: ada) }
        principal.ownConsent = consent
        return principal
    }

    @Test func aPageLoadOfTheTargetShowsOneNoticePerSession() {
        let notices = RequestPipeline.targetNotices(
            Self.principal(acting: [Self.session("imp_1"), Self.session("imp_2")]), impersonating: false, pageLoad: true, now: Self.now)
        #expect(notices.map(\.sessionID) == ["imp_1", "imp_2"])
        #expect(notices.first?.actorName == "Ada Admin" && notices.first?.actorUsername == "ada" && notices.first?.reason == "ticket 1")
        #expect(notices.allSatisfy { !$0.consentRevocable })
    }

    @Test func revokeIsOfferedOnlyWithAnActiveConsent() {
        let active = Consent(userID: Self.emma.id, grantedAt: Self.now - 10, expiresAt: Self.now + 100)
        var revoked = active
        revoked.revokedAt = Self.now - 1
        let expired = Consent(userID: Self.emma.id, grantedAt: Self.now - 100, expiresAt: Self.now - 1)
        func offered(_ consent: Consent?) -> Bool? {
            RequestPipeline.targetNotices(Self.principal(consent: consent), impersonating: false, pageLoad: true, now: Self.now).first?.consentRevocable
        }
        #expect(offered(active) == true)
        #expect(offered(revoked) == false)
        #expect(offered(expired) == false)
        #expect(offered(nil) == false)
    }

    @Test func noNoticeForFetchesTokensImpersonatorsOrSessionsPastTheirEnd() {
        #expect(RequestPipeline.targetNotices(Self.principal(), impersonating: false, pageLoad: false, now: Self.now).isEmpty)
        #expect(RequestPipeline.targetNotices(Self.principal(browser: false), impersonating: false, pageLoad: true, now: Self.now).isEmpty)
        #expect(RequestPipeline.targetNotices(Self.principal(), impersonating: true, pageLoad: true, now: Self.now).isEmpty)
        var actingAsSomeone = Self.principal()
        actingAsSomeone.impersonation = Self.session("imp_mine")
        #expect(RequestPipeline.targetNotices(actingAsSomeone, impersonating: false, pageLoad: true, now: Self.now).isEmpty)
        #expect(RequestPipeline.targetNotices(Self.principal(acting: [Self.session(expires: 0)]), impersonating: false, pageLoad: true, now: Self.now).isEmpty)
        #expect(RequestPipeline.targetNotices(Self.principal(acting: []), impersonating: false, pageLoad: true, now: Self.now).isEmpty)
    }
}
