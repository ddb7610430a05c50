import ActAsCore
import ActAsCrypto
import Foundation
import Testing
@testable import ActAsStore

@Suite("Live state and state sync")
struct LiveStateTests {
    private func loaded(users: [User], sessions: [SignInSession] = [], tokens: [APIToken] = []) -> LiveState {
        let live = LiveState()
        live.load(StoreSnapshot(users: users, sessions: sessions, tokens: tokens, keys: [], consents: [], impersonations: [], changeID: 0), now: t0)
        return live
    }

    @Test func everyChangeBumpsTheGeneration() {
        let alice = makeUser("alice")
        let live = LiveState()
        var last = live.generation
        func bumped(_ sourceLocation: SourceLocation = #_sourceLocation) {
            let now = live.generation
            #expect(now > last, sourceLocation: sourceLocation)
            last = now
        }
        live.load(StoreSnapshot(users: [], sessions: [], tokens: [], keys: [], consents: [], impersonations: [], changeID: 0), now: t0)
        bumped()
        live.apply(userID: alice.id, user: alice)
        bumped()
        live.apply(userID: alice.id, user: alice)  // same value again: still a change
        bumped()
        let (_, session) = makeSession(for: alice)
        live.apply(sessionHash: session.idHash, session: session)
        bumped()
        live.apply(sessionHash: session.idHash, session: nil)
        bumped()
        let token = makeToken(for: alice).record
        live.apply(tokenHash: token.tokenHash, token: token)
        bumped()
        live.apply(keys: [makeKey(created: t0)], now: t0)
        bumped()
        live.apply(consentOf: alice.id, consent: Consent(userID: alice.id, grantedAt: t0, expiresAt: t0 + 60))
        bumped()
        live.apply(impersonationID: "imp_1", session: makeImpersonation(id: "imp_1", actor: "usr_x", target: alice.id))
        bumped()
        live.pruneExpired(now: t0)
        bumped()
        live.apply(userID: "usr_nobody", user: nil)
        bumped()
    }

    @Test func sessionPrincipal() {
        let alice = makeUser("alice"), ivy = makeUser("ivy", status: .invited)
        let live = loaded(users: [alice, ivy])
        let (_, session) = makeSession(for: alice, expires: t0 + 60)
        let (_, invited) = makeSession(for: ivy, expires: t0 + 60)
        live.apply(sessionHash: session.idHash, session: session)
        live.apply(sessionHash: invited.idHash, session: invited)

        #expect(live.principal(sessionHash: session.idHash, now: t0)?.user.id == alice.id)
        #expect(live.principal(sessionHash: session.idHash, now: t0)?.session == session)
        #expect(live.principal(sessionHash: session.idHash, now: t0)?.token == nil)
        #expect(live.principal(sessionHash: invited.idHash, now: t0)?.user.id == ivy.id)
        #expect(live.principal(sessionHash: session.idHash, now: t0 + 59.9) != nil)
        #expect(live.principal(sessionHash: session.idHash, now: t0 + 60) == nil)  // expired at expiresAt
        #expect(live.principal(sessionHash: session.idHash, now: t0 + 3600) == nil)
        #expect(live.principal(sessionHash: "unknown", now: t0) == nil)
        #expect(live.principal(sessionHash: "", now: t0) == nil)
    }

    @Test(arguments: [User.Status.suspended, .deleted])
    func sessionsOfSuspendedOrDeletedUsersResolveToNobody(status: User.Status) {
        let alice = makeUser("alice"), bob = makeUser("bob")
        let live = loaded(users: [alice, bob])
        let (_, a) = makeSession(for: alice), (_, b) = makeSession(for: bob)
        live.apply(sessionHash: a.idHash, session: a)
        live.apply(sessionHash: b.idHash, session: b)
        var changed = alice
        changed.status = status
        live.apply(userID: alice.id, user: changed)
        #expect(live.principal(sessionHash: a.idHash, now: t0) == nil)
        #expect(live.principal(sessionHash: b.idHash, now: t0) != nil)
        // Reactivating does not bring the dropped sessions back.
        live.apply(userID: alice.id, user: alice)
        #expect(live.principal(sessionHash: a.idHash, now: t0) == nil)
    }

    @Test func aSessionWhoseUserIsGoneResolvesToNobody() {
        let alice = makeUser("alice")
        let (_, session) = makeSession(for: alice)
        let live = loaded(users: [alice], sessions: [session])
        #expect(live.principal(sessionHash: session.idHash, now: t0) != nil)
        live.apply(userID: alice.id, user: nil)
        #expect(live.principal(sessionHash: session.idHash, now: t0) == nil)
        #expect(live.read { $0.user(username: "alice") } == nil)
    }

    @Test func aSuspendedUserInTheSnapshotHasNoPrincipal() {
        let sam = makeUser("sam", status: .suspended)
        let (_, session) = makeSession(for: sam)
        let token = makeToken(for: sam).record
        let live = loaded(users: [sam], sessions: [session], tokens: [token])
        #expect(live.principal(sessionHash: session.idHash, now: t0) == nil)
        #expect(live.principal(tokenHash: token.tokenHash) == nil)
    }

    @Test func tokenPrincipal() {
        let alice = makeUser("alice")
        let live = loaded(users: [alice])
        let (token, record) = makeToken(for: alice)
        live.apply(tokenHash: record.tokenHash, token: record)
        #expect(live.principal(tokenHash: Secrets.hash(token))?.user.id == alice.id)
        #expect(live.principal(tokenHash: Secrets.hash(token))?.token == record)
        #expect(live.principal(tokenHash: token) == nil)
        var revoked = record
        revoked.revokedAt = t0
        live.apply(tokenHash: record.tokenHash, token: revoked)
        #expect(live.principal(tokenHash: record.tokenHash) == nil)
        #expect(live.read { $0.tokens[record.tokenHash] } == nil)

        // A revoked token in a snapshot is not loaded either.
        let fromSnapshot = loaded(users: [alice], tokens: [revoked])
        #expect(fromSnapshot.principal(tokenHash: record.tokenHash) == nil)

        // Tokens stop working while their user is suspended.
        live.apply(tokenHash: record.tokenHash, token: record)
        var suspended = alice
        suspended.status = .suspended
        live.apply(userID: alice.id, user: suspended)
        #expect(live.principal(tokenHash: record.tokenHash) == nil)
    }

    @Test func renamingAUserMovesTheUsernameIndex() {
        let alice = makeUser("alice")
        let live = loaded(users: [alice])
        var renamed = alice
        renamed.username = "alice2"
        live.apply(userID: alice.id, user: renamed)
        #expect(live.read { $0.user(username: "alice") } == nil)
        #expect(live.read { $0.user(username: "alice2")?.id } == alice.id)
    }

    @Test func openImpersonationsByActor() {
        let live = LiveState()
        let open = makeImpersonation(id: "imp_1", actor: "usr_admin", target: "usr_a")
        live.apply(impersonationID: open.id, session: open)
        #expect(live.read { $0.openImpersonationByActor["usr_admin"] } == "imp_1")
        var ended = open
        ended.endedAt = t0 + 1
        live.apply(impersonationID: open.id, session: ended)
        #expect(live.read { $0.openImpersonationByActor["usr_admin"] } == nil)
        #expect(live.read { $0.impersonations["imp_1"] } == nil)
        let next = makeImpersonation(id: "imp_2", actor: "usr_admin", target: "usr_b")
        live.apply(impersonationID: next.id, session: next)
        live.apply(impersonationID: "imp_1", session: nil)  // a late replay of the old one
        #expect(live.read { $0.openImpersonationByActor["usr_admin"] } == "imp_2")
    }

    // MARK: end notices (SPEC §7: a notice belongs to its session and is shown once)

    private func endedWithNotice(_ live: LiveState, id: String, at: Date) -> ImpersonationSession {
        let session = makeImpersonation(id: id, actor: "usr_admin", target: "usr_a")
        live.apply(impersonationID: session.id, session: session)
        return live.end(impersonationID: id, at: at, reason: .consentRevoked)!
    }

    private func notice(_ live: LiveState) -> String? { live.read { $0.pendingNotices["usr_admin"]?.id } }

    @Test func aNewSessionDropsTheNoticeOfAnEarlierOne() {
        let live = LiveState()
        _ = endedWithNotice(live, id: "imp_1", at: t0 + 1)
        #expect(notice(live) == "imp_1")
        var next = makeImpersonation(id: "imp_2", actor: "usr_admin", target: "usr_b")
        next.startedAt = t0 + 2
        live.apply(impersonationID: next.id, session: next)
        #expect(notice(live) == nil)
        _ = live.end(impersonationID: "imp_2", at: t0 + 3, reason: .exit)
        #expect(notice(live) == nil)
        #expect(live.takeDroppedNotices() == ["imp_1"])
        #expect(live.takeDroppedNotices().isEmpty)
    }

    @Test(arguments: [EndReason.exit, .actorSignedOut])
    func exitAndSignOutLeaveNoNotice(reason: EndReason) {
        let live = LiveState()
        _ = endedWithNotice(live, id: "imp_1", at: t0 + 1)
        // An open session beside a pending notice (a race, or an old store): its exit drops it.
        let open = makeImpersonation(id: "imp_2", actor: "usr_admin", target: "usr_b")
        live.apply(impersonationID: open.id, session: open)
        _ = live.end(impersonationID: "imp_2", at: t0 + 3, reason: reason)
        #expect(notice(live) == nil)
    }

    @Test func aLaterAnnouncedEndReplacesTheNotice() {
        let live = LiveState()
        _ = endedWithNotice(live, id: "imp_1", at: t0 + 1)
        _ = endedWithNotice(live, id: "imp_2", at: t0 + 5)
        #expect(notice(live) == "imp_2")
        #expect(live.takeDroppedNotices() == ["imp_1"])
        #expect(live.clearNotice(actorID: "usr_admin", impersonationID: "imp_2"))
        #expect(!live.clearNotice(actorID: "usr_admin", impersonationID: "imp_2"))  // shown once
    }

    @Test func signingOutDropsTheNotice() {
        let admin = makeUser("admin")
        let live = loaded(users: [admin])
        let (_, session) = makeSession(for: admin)
        live.apply(sessionHash: session.idHash, session: session)
        let open = makeImpersonation(id: "imp_1", actor: admin.id, target: "usr_a")
        live.apply(impersonationID: open.id, session: open)
        _ = live.end(impersonationID: "imp_1", at: t0 + 1, reason: .endedByOperator)
        #expect(live.read { $0.pendingNotices[admin.id]?.id } == "imp_1")
        live.apply(sessionHash: session.idHash, session: nil, now: t0 + 2)
        #expect(live.read { $0.pendingNotices[admin.id] } == nil)
        #expect(live.takeDroppedNotices() == ["imp_1"])
    }

    @Test func aStaleNoticeArrivingLateFromTheStoreIsIgnored() {
        let live = LiveState()
        var old = endedWithNotice(live, id: "imp_1", at: t0 + 1)
        live.dropNotice(actorID: "usr_admin", at: t0 + 2)
        _ = live.takeDroppedNotices()
        // The change feed replays the row written by the end, notice still pending there.
        old.noticePending = true
        live.apply(impersonationID: old.id, session: old)
        #expect(notice(live) == nil)
        #expect(live.takeDroppedNotices() == ["imp_1"])
    }

    @Test func loadKeepsOnlyTheLatestNoticeAndNoneBesideAnOpenSession() {
        func ended(_ id: String, actor: String, at: TimeInterval) -> ImpersonationSession {
            var session = makeImpersonation(id: id, actor: actor, target: "usr_a")
            session.endedAt = t0 + at
            session.endReason = .consentRevoked
            session.noticePending = true
            return session
        }
        let open = makeImpersonation(id: "imp_open", actor: "usr_b", target: "usr_a")
        let live = LiveState()
        live.load(StoreSnapshot(
            users: [], sessions: [], tokens: [], keys: [], consents: [],
            impersonations: [ended("imp_2", actor: "usr_admin", at: 5), ended("imp_1", actor: "usr_admin", at: 1), ended("imp_3", actor: "usr_admin", at: 3),
                             ended("imp_b", actor: "usr_b", at: 1), open],
            changeID: 0), now: t0)
        #expect(notice(live) == "imp_2")
        #expect(live.read { $0.pendingNotices["usr_b"] } == nil)
        #expect(live.takeDroppedNotices() == ["imp_1", "imp_3", "imp_b"])
    }

    @Test func pruneExpiredDropsOnlyDeadSessions() {
        let alice = makeUser("alice")
        let old = makeSession(for: alice, expires: t0 + 10).session, fresh = makeSession(for: alice, expires: t0 + 100).session
        let live = loaded(users: [alice], sessions: [old, fresh])
        live.pruneExpired(now: t0 + 50)
        #expect(live.read { Set($0.sessions.keys) } == [fresh.idHash])
    }

    // MARK: key ring

    @Test func keyRingNewestUnretiredSignsRetiredWithinGraceArePublished() throws {
        let live = LiveState(keyGracePeriod: 3600)
        let ancient = makeKey(created: t0 - 10_000, retired: t0 - 7200)  // beyond grace
        let previous = makeKey(created: t0 - 5000, retired: t0 - 600)    // within grace
        let current = makeKey(created: t0 - 600)
        live.apply(keys: [current, ancient, previous], now: t0)
        let ring = try #require(live.keyRing)
        #expect(ring.signing.kid == current.kid)
        #expect(ring.published.map(\.kid) == [current.kid, previous.kid])
        let jwks = String(decoding: ring.jwksJSON, as: UTF8.self)
        #expect(jwks.contains(previous.kid))
        #expect(!jwks.contains(ancient.kid))

        // An hour later the previous key has aged out too.
        live.apply(keys: [current, ancient, previous], now: t0 + 3000)
        #expect(try #require(live.keyRing).published.map(\.kid) == [current.kid])
    }

    @Test func noUnretiredKeyMeansNoRing() {
        let live = LiveState()
        live.apply(keys: [makeKey(created: t0, retired: t0)], now: t0)
        #expect(live.keyRing == nil)
        live.apply(keys: [], now: t0)
        #expect(live.keyRing == nil)
    }

    @Test func anUnreadableKeyRecordDoesNotBreakTheRing() throws {
        let live = LiveState()
        let good = makeKey(created: t0)
        let broken = SigningKeyRecord(kid: "broken", privateKey: Data([1, 2, 3]), createdAt: t0 - 10, retiredAt: t0)
        live.apply(keys: [broken, good], now: t0)
        #expect(try #require(live.keyRing).published.map(\.kid) == [good.kid])
    }

    // MARK: state sync

    /// `actas users suspend` in another process: the server learns it from the change feed.
    @Test(arguments: StoreKind.all) func aSuspensionWrittenByAnotherProcessReachesTheLiveState(kind: StoreKind) async throws {
        try await withTwoStores(kind) { server, cli, _ in
            let alice = makeUser("alice"), bob = makeUser("bob")
            try await server.saveUsers([alice, bob])
            let (_, session) = makeSession(for: alice)
            _ = try await server.recordSignIn(userID: alice.id, at: t0, session: session)
            let token = makeToken(for: bob)
            try await server.insertToken(token.record)

            let live = LiveState()
            let sync = StateSync(store: server, state: live)
            try await sync.loadSnapshot(now: t0)
            #expect(live.principal(sessionHash: session.idHash, now: t0) != nil)
            #expect(live.principal(tokenHash: token.record.tokenHash) != nil)
            #expect(try await sync.poll(now: t0) == 0)

            let cliDirectory = Directory(store: cli, live: nil, knownRoles: roles, hasher: fastHasher)
            _ = try await cliDirectory.setStatus("alice", .suspended, now: t0)
            _ = try await cliDirectory.revokeToken(id: token.record.id, now: t0)
            var carol = UserRecordInput(username: "carol")
            carol.role = "manager"
            _ = try await cliDirectory.save([carol], now: t0)

            // Not yet polled: still cached.
            #expect(live.principal(sessionHash: session.idHash, now: t0) != nil)
            let generation = live.generation
            let applied = try await sync.poll(now: t0)
            #expect(applied > 0)
            #expect(live.generation > generation)
            #expect(live.principal(sessionHash: session.idHash, now: t0) == nil)
            #expect(live.read { $0.sessions[session.idHash] } == nil)
            #expect(live.read { $0.users[alice.id]?.status } == .suspended)
            #expect(live.principal(tokenHash: token.record.tokenHash) == nil)
            #expect(live.read { $0.user(username: "carol")?.role } == "manager")
            #expect(try await sync.poll(now: t0) == 0)
        }
    }

    @Test(arguments: StoreKind.all) func aSignInAndSignOutInAnotherProcessArePolled(kind: StoreKind) async throws {
        try await withTwoStores(kind) { server, cli, _ in
            let alice = makeUser("alice")
            try await server.saveUsers([alice])
            let live = LiveState()
            let sync = StateSync(store: server, state: live)
            try await sync.loadSnapshot(now: t0)
            let (_, session) = makeSession(for: alice)
            _ = try await cli.recordSignIn(userID: alice.id, at: t0, session: session)
            try await sync.poll(now: t0)
            #expect(live.principal(sessionHash: session.idHash, now: t0) != nil)
            #expect(live.read { $0.users[alice.id]?.lastLogin } == t0)
            try await cli.deleteSession(idHash: session.idHash)
            try await sync.poll(now: t0)
            #expect(live.principal(sessionHash: session.idHash, now: t0) == nil)
        }
    }

    @Test(arguments: StoreKind.all) func aRotationInAnotherProcessReachesTheKeyRing(kind: StoreKind) async throws {
        try await withTwoStores(kind) { server, cli, _ in
            try await KeyManager.ensureSigningKey(server, now: t0)
            let live = LiveState(keyGracePeriod: 3600)
            let sync = StateSync(store: server, state: live)
            try await sync.loadSnapshot(now: t0)
            let first = try #require(live.keyRing).signing.kid
            let rotation = try await KeyManager.rotate(cli, now: t0 + 10)
            try await sync.poll(now: t0 + 10)
            let ring = try #require(live.keyRing)
            #expect(ring.signing.kid == rotation.new)
            #expect(ring.published.map(\.kid) == [rotation.new, first])
        }
    }

    @Test(arguments: StoreKind.all) func consentAndImpersonationChangesArePolled(kind: StoreKind) async throws {
        try await withTwoStores(kind) { server, cli, _ in
            let bob = makeUser("bob")
            try await server.saveUsers([bob])
            let live = LiveState()
            let sync = StateSync(store: server, state: live)
            try await sync.loadSnapshot(now: t0)
            try await cli.saveConsent(Consent(userID: bob.id, grantedAt: t0, expiresAt: t0 + 600))
            let session = makeImpersonation(actor: "usr_admin", target: bob.id)
            #expect(try await cli.startImpersonation(session))
            try await sync.poll(now: t0)
            #expect(live.read { $0.consents[bob.id]?.isActive(at: t0) } == true)
            #expect(live.read { $0.openImpersonationByActor["usr_admin"] } == session.id)
            var ended = session
            ended.endedAt = t0 + 5
            ended.endReason = .endedByOperator
            try await cli.updateImpersonation(ended)
            try await sync.poll(now: t0)
            #expect(live.read { $0.openImpersonationByActor["usr_admin"] } == nil)
        }
    }

    @Test(arguments: StoreKind.all) func aSessionAlreadyExpiredWhenPolledIsNotCached(kind: StoreKind) async throws {
        try await withTwoStores(kind) { server, cli, _ in
            let alice = makeUser("alice")
            try await server.saveUsers([alice])
            let live = LiveState()
            let sync = StateSync(store: server, state: live)
            try await sync.loadSnapshot(now: t0)
            let (_, session) = makeSession(for: alice, expires: t0 + 5)
            _ = try await cli.recordSignIn(userID: alice.id, at: t0, session: session)
            try await sync.poll(now: t0 + 10)
            #expect(live.read { $0.sessions[session.idHash] } == nil)
        }
    }

    @Test(arguments: StoreKind.all) func aReaderBehindThePrunedFeedReloadsTheSnapshot(kind: StoreKind) async throws {
        try await withTwoStores(kind) { server, cli, _ in
            let alice = makeUser("alice")
            try await server.saveUsers([alice])
            let live = LiveState()
            let sync = StateSync(store: server, state: live)
            try await sync.loadSnapshot(now: t0)
            for name in ["b", "c", "d"] { try await cli.saveUsers([makeUser(name)]) }
            var suspended = alice
            suspended.status = .suspended
            try await cli.saveUsers([suspended])
            try await cli.pruneChanges(before: Date().addingTimeInterval(3600))
            #expect(try await sync.poll(now: t0) == -1)
            #expect(live.read { Set($0.users.values.map(\.username)) } == ["alice", "b", "c", "d"])
            #expect(live.read { $0.users[alice.id]?.status } == .suspended)
            #expect(try await sync.poll(now: t0) == 0)
        }
    }
}
