import ActAsCore
import ActAsCrypto
import Foundation
import Testing
@testable import ActAsStore

/// SPEC §7: an impersonation belongs to the sign-in session that started it.
@Suite("Impersonation bound to its sign-in")
struct SignInBindingTests {
    let admin = makeUser("admin", role: "admin")
    let alice = makeUser("alice")

    private func bound(_ id: String, to session: SignInSession?) -> ImpersonationSession {
        var imp = makeImpersonation(id: id, actor: admin.id, target: alice.id)
        imp.signInSession = session?.idHash
        return imp
    }

    private func live(_ sessions: [SignInSession]) -> LiveState {
        let live = LiveState()
        live.load(StoreSnapshot(users: [admin, alice], sessions: sessions, tokens: [], keys: [], consents: [], impersonations: [], changeID: 0), now: t0)
        return live
    }

    @Test func onlyTheStartingSignInActs() {
        let (_, first) = makeSession(for: admin), (_, second) = makeSession(for: admin)
        let live = live([first, second])
        live.apply(impersonationID: "imp_1", session: bound("imp_1", to: first))
        #expect(live.principal(sessionHash: first.idHash, now: t0)?.impersonation?.id == "imp_1")
        #expect(live.principal(sessionHash: second.idHash, now: t0)?.impersonation == nil)
        #expect(live.principal(sessionHash: second.idHash, now: t0)?.target == nil)
        // Still one per administrator: the other sign-in sees it for `chaining`.
        #expect(live.read { $0.openImpersonation(actorID: admin.id)?.id } == "imp_1")
        #expect(live.read { $0.openImpersonation(actorID: admin.id, signIn: second.idHash) } == nil)
        #expect(live.read { $0.openImpersonation(actorID: admin.id, signIn: nil) } == nil)  // API tokens
    }

    @Test func aRowFromBeforeTheBindingBelongsToEverySignIn() {
        let (_, first) = makeSession(for: admin), (_, second) = makeSession(for: admin)
        let live = live([first, second])
        live.apply(impersonationID: "imp_old", session: bound("imp_old", to: nil))
        #expect(live.principal(sessionHash: first.idHash, now: t0)?.impersonation?.id == "imp_old")
        #expect(live.principal(sessionHash: second.idHash, now: t0)?.impersonation?.id == "imp_old")
    }

    @Test func theEndNoticeGoesToTheSignInThatWasActing() {
        let (_, first) = makeSession(for: admin), (_, second) = makeSession(for: admin)
        let live = live([first, second])
        live.apply(impersonationID: "imp_1", session: bound("imp_1", to: first))
        _ = live.end(impersonationID: "imp_1", at: t0 + 1, reason: .endedByOperator)
        #expect(live.principal(sessionHash: second.idHash, now: t0 + 2)?.pendingNotice == nil)
        #expect(live.principal(sessionHash: first.idHash, now: t0 + 2)?.pendingNotice?.id == "imp_1")
        // The other sign-in signing out, or its exit, leaves that notice alone.
        #expect(live.dropNotice(actorID: admin.id, signIn: second.idHash, at: t0 + 3) == nil)
        live.apply(sessionHash: second.idHash, session: nil, now: t0 + 3)
        #expect(live.principal(sessionHash: first.idHash, now: t0 + 4)?.pendingNotice?.id == "imp_1")
        // Its own sign-out drops it.
        live.apply(sessionHash: first.idHash, session: nil, now: t0 + 5)
        #expect(live.read { $0.pendingNotices[admin.id] } == nil)
    }

    @Test func aSessionWhoseSignInIsGoneIsOrphaned() {
        let (_, first) = makeSession(for: admin, expires: t0 + 60), (_, second) = makeSession(for: admin)
        let live = live([first, second])
        live.apply(impersonationID: "imp_1", session: bound("imp_1", to: first))
        live.apply(impersonationID: "imp_legacy", session: {
            var old = makeImpersonation(id: "imp_legacy", actor: "usr_other", target: alice.id)
            old.signInSession = nil
            return old
        }())
        #expect(live.orphanedImpersonations(now: t0).isEmpty)
        #expect(live.orphanedImpersonations(now: t0 + 61).map(\.id) == ["imp_1"])  // its sign-in expired
        live.apply(sessionHash: first.idHash, session: nil)
        #expect(live.orphanedImpersonations(now: t0).map(\.id) == ["imp_1"])  // signed out elsewhere
    }

    // SQLite here; the PostgreSQL store's suite runs the same calls (see SQLiteStoreTests' StoreKind).
    @Test func theStoreKeepsTheSignIn() async throws {
        try await withStore { store in
            try await store.saveUsers([admin, alice])
            let (_, session) = makeSession(for: admin)
            let imp = bound(Secrets.identifier(prefix: "imp_"), to: session)
            #expect(try await store.startImpersonation(imp))
            #expect(try await store.impersonation(id: imp.id)?.signInSession == session.idHash)
            var extended = imp
            extended.expiresAt = t0 + 7200
            try await store.updateImpersonation(extended)
            #expect(try await store.impersonation(id: imp.id) == extended)
            let ended = try await store.endImpersonation(id: imp.id, at: t0 + 10, reason: .actorSignedOut, notice: false)
            #expect(ended?.signInSession == session.idHash)
            #expect(try await store.snapshot(now: t0).impersonations.isEmpty)
        }
    }
}
