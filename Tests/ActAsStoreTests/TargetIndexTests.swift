import ActAsCore
import Foundation
import Testing
@testable import ActAsStore

/// SPEC §10.5: "is this signed-in user the target of an open impersonation?" is an index kept
/// by the live state, answered with the principal.
@Suite("Live state: impersonations by target")
struct TargetIndexTests {
    private let ada = makeUser("ada", role: "super_admin"), bea = makeUser("bea", role: "super_admin"), emma = makeUser("emma")

    private func live(_ impersonations: [ImpersonationSession] = []) -> (LiveState, SignInSession) {
        let live = LiveState()
        let consent = Consent(userID: emma.id, grantedAt: t0, expiresAt: t0 + 7200)
        live.load(StoreSnapshot(users: [ada, bea, emma], sessions: [], tokens: [], keys: [], consents: [consent],
                                impersonations: impersonations, changeID: 0), now: t0)
        let (_, session) = makeSession(for: emma)
        live.apply(sessionHash: session.idHash, session: session)
        return (live, session)
    }

    @Test func openSessionsFromTheSnapshotAreIndexedAndEndedOnesAreNot() {
        let open = makeImpersonation(id: "imp_open", actor: ada.id, target: emma.id)
        let ended = makeImpersonation(id: "imp_ended", actor: bea.id, target: emma.id, ended: t0 + 10)
        let (live, session) = live([open, ended])
        let principal = live.principal(sessionHash: session.idHash, now: t0)
        #expect(principal?.actingAsMe == [LiveState.ActingAsMe(session: open, actor: ada)])
        #expect(principal?.ownConsent?.userID == emma.id)
        #expect(live.read { $0.openImpersonationsByTarget } == [emma.id: ["imp_open"]])
    }

    @Test func startsFromElsewhereEndsAndRowUpdatesKeepTheIndex() {
        let (live, session) = live()
        #expect(live.principal(sessionHash: session.idHash, now: t0)?.actingAsMe == [])
        var first = makeImpersonation(id: "imp_a", actor: ada.id, target: emma.id)
        var second = makeImpersonation(id: "imp_b", actor: bea.id, target: emma.id)
        second.startedAt = t0 + 5
        live.apply(impersonationID: second.id, session: second)  // as the change feed delivers another instance's start
        live.apply(impersonationID: first.id, session: first)
        #expect(live.principal(sessionHash: session.idHash, now: t0)?.actingAsMe.map(\.session.id) == ["imp_a", "imp_b"])
        first.expiresAt = t0 + 9000  // extended: still one entry
        live.apply(impersonationID: first.id, session: first)
        #expect(live.read { $0.openImpersonations(targetID: emma.id) }.map(\.expiresAt) == [t0 + 9000, second.expiresAt])
        _ = live.end(impersonationID: "imp_a", at: t0 + 20, reason: .endedByTarget)
        #expect(live.principal(sessionHash: session.idHash, now: t0)?.actingAsMe.map(\.session.id) == ["imp_b"])
        second.endedAt = t0 + 30
        second.endReason = .exit
        live.apply(impersonationID: second.id, session: second)  // ended elsewhere
        #expect(live.principal(sessionHash: session.idHash, now: t0)?.actingAsMe == [])
        #expect(live.read { $0.openImpersonationsByTarget }.isEmpty)
    }

    @Test func theActorsPrincipalCarriesNoNoticeOfItsOwn() {
        let open = makeImpersonation(id: "imp_open", actor: ada.id, target: emma.id)
        let (live, _) = live([open])
        let (_, adaSession) = makeSession(for: ada)
        live.apply(sessionHash: adaSession.idHash, session: adaSession)
        #expect(live.principal(sessionHash: adaSession.idHash, now: t0)?.actingAsMe == [])
    }
}
