import ActAsCore
import ActAsCrypto
import Foundation
import Testing
@testable import ActAsStore

@Suite("Store contract (SQLite, PostgreSQL)")
struct SQLiteStoreTests {
    // MARK: migrations and files

    @Test(arguments: StoreKind.all) func migratingTwiceIsANoOpAndKeepsData(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.saveUsers([makeUser("alice")])
            try await store.migrate()  // re-running CREATE TABLE would throw
            try await store.migrate()
            try await (store as? SQLiteStore)?.checkSchemaVersion()
            #expect(try await store.user(username: "alice")?.id == "usr_alice")
        }
    }

    @Test func reopeningAnExistingFileMigratesNothing() async throws {
        let path = freshDatabasePath()
        defer { removeDatabase(path) }
        let first = try await SQLiteStore.open(path: path)
        try await first.migrate()
        try await first.saveUsers([makeUser("alice")])
        await first.close()
        let second = try await SQLiteStore.open(path: path)
        try await second.migrate()
        #expect(try await second.users().map(\.username) == ["alice"])
        await second.close()
    }

    @Test func databaseFilesAreOwnerOnly() async throws {
        let path = freshDatabasePath()
        defer { removeDatabase(path) }
        let store = try await SQLiteStore.open(path: path)
        try await store.migrate()
        try await store.saveUsers([makeUser("alice", passwordHash: "$scrypt$secret")])
        func mode(_ file: String) throws -> Int {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }
        #expect(try mode(path) & 0o077 == 0)
        #expect(try mode((path as NSString).deletingLastPathComponent) & 0o077 == 0)
        if FileManager.default.fileExists(atPath: path + "-wal") {
            #expect(try mode(path + "-wal") & 0o077 == 0)
        }
        if FileManager.default.fileExists(atPath: path + "-shm") {
            #expect(try mode(path + "-shm") & 0o077 == 0)
        }
        await store.close()
    }

    @Test func openingAnUnusablePathIsUnavailable() async throws {
        let blocker = FileManager.default.temporaryDirectory.appendingPathComponent("actas-blocker-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        defer { try? FileManager.default.removeItem(atPath: blocker) }
        // The parent "folder" is a regular file.
        await #expect(throws: (any Error).self) { _ = try await SQLiteStore.open(path: blocker + "/actas.db") }
    }

    // MARK: users

    @Test(arguments: StoreKind.all) func saveUsersInsertsThenUpdatesByUsername(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            var alice = makeUser("alice", groups: ["sales", "o'brien \"quoted\"", "ünïcode"], passwordHash: "hash-1")
            alice.lastLogin = t0 - 60
            try await store.saveUsers([alice])
            let stored = try #require(try await store.user(username: "alice"))
            #expect(stored == alice)
            #expect(try await store.user(id: "usr_alice") == alice)

            var updated = alice
            updated.email = "new@example.com"
            updated.groups = []
            updated.lastLogin = nil
            updated.passwordHash = nil
            updated.createdAt = t0 + 999  // not changeable by an update
            updated.updatedAt = t0 + 10
            try await store.saveUsers([updated])
            let reread = try #require(try await store.user(username: "alice"))
            #expect(reread.email == "new@example.com")
            #expect(reread.groups == [])
            #expect(reread.lastLogin == nil)
            #expect(reread.passwordHash == nil)
            #expect(reread.createdAt == t0)
            #expect(reread.updatedAt == t0 + 10)
            #expect(try await store.users().count == 1)
        }
    }

    @Test(arguments: StoreKind.all) func usernameWithAnotherIDIsAConflict(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.saveUsers([makeUser("alice")])
            await #expect(throws: StoreError.self) { try await store.saveUsers([makeUser("alice", id: "usr_other")]) }
            #expect(try await store.user(username: "alice")?.id == "usr_alice")
        }
    }

    @Test(arguments: StoreKind.all) func idOfAnotherUserIsAConflict(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.saveUsers([makeUser("alice")])
            await #expect(throws: StoreError.self) { try await store.saveUsers([makeUser("mallory", id: "usr_alice")]) }
            #expect(try await store.user(id: "usr_alice")?.username == "alice")
            #expect(try await store.user(username: "mallory") == nil)
        }
    }

    @Test(arguments: StoreKind.all) func saveUsersIsAllOrNothing(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.saveUsers([makeUser("alice")])
            let before = try await feedPosition(store)
            var renamed = makeUser("alice")
            renamed.email = "changed@example.com"
            await #expect(throws: StoreError.self) {
                try await store.saveUsers([makeUser("bob"), renamed, makeUser("carol", id: "usr_alice")])
            }
            #expect(try await store.user(username: "bob") == nil)
            #expect(try await store.user(username: "alice")?.email == "alice@example.com")
            #expect(try await feedPosition(store) == before)
            #expect(try await changes(store, after: before).isEmpty)
        }
    }

    @Test(arguments: StoreKind.all, [User.Status.suspended, .deleted])
    func leavingTheSignInStatusesDeletesSessionsInTheSameWrite(kind: StoreKind, status: User.Status) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice"), bob = makeUser("bob")
            try await store.saveUsers([alice, bob])
            let one = makeSession(for: alice), two = makeSession(for: alice), bobs = makeSession(for: bob)
            _ = try await store.recordSignIn(userID: alice.id, at: t0, session: one.session)
            _ = try await store.recordSignIn(userID: alice.id, at: t0, session: two.session)
            _ = try await store.recordSignIn(userID: bob.id, at: t0, session: bobs.session)
            let position = try await feedPosition(store)

            var suspended = try #require(try await store.user(id: alice.id))
            suspended.status = status
            try await store.saveUsers([suspended])

            #expect(try await store.session(idHash: one.session.idHash) == nil)
            #expect(try await store.session(idHash: two.session.idHash) == nil)
            #expect(try await store.session(idHash: bobs.session.idHash) != nil)
            let feed = try await changes(store, after: position)
            #expect(Set(feed.filter { $0.kind == .session }.map(\.key)) == [one.session.idHash, two.session.idHash])
            #expect(feed.filter { $0.kind == .user }.map(\.key) == [alice.id])
            #expect(try await store.user(id: alice.id)?.status == status)
        }
    }

    @Test(arguments: StoreKind.all) func recordSignInSetsLastLoginAndActivatesInvited(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let invited = makeUser("ivy", status: .invited)
            try await store.saveUsers([invited])
            let (_, session) = makeSession(for: invited)
            let position = try await feedPosition(store)
            let user = try await store.recordSignIn(userID: invited.id, at: t0 + 5, session: session)
            #expect(user.status == .active)
            #expect(user.lastLogin == t0 + 5)
            let stored = try #require(try await store.user(id: invited.id))
            #expect(stored.status == .active)
            #expect(stored.lastLogin == t0 + 5)
            #expect(try await store.session(idHash: session.idHash) == session)
            let feed = try await changes(store, after: position)
            #expect(feed.contains(Change(id: feed.first { $0.kind == .session }?.id ?? -1, kind: .session, key: session.idHash)))
            #expect(feed.contains { $0.kind == .user && $0.key == invited.id })
        }
    }

    @Test(arguments: StoreKind.all, [User.Status.suspended, .deleted])
    func recordSignInRefusesUsersWhoMayNotSignIn(kind: StoreKind, status: User.Status) async throws {
        try await withStore(kind) { store in
            let user = makeUser("sam", status: status)
            try await store.saveUsers([user])
            let (_, session) = makeSession(for: user)
            await #expect(throws: StoreError.self) { _ = try await store.recordSignIn(userID: user.id, at: t0, session: session) }
            #expect(try await store.session(idHash: session.idHash) == nil)
            #expect(try await store.user(id: user.id)?.lastLogin == nil)
        }
    }

    @Test(arguments: StoreKind.all) func recordSignInForAnUnknownUserWritesNothing(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let ghost = makeUser("ghost")
            let (_, session) = makeSession(for: ghost)
            await #expect(throws: StoreError.self) { _ = try await store.recordSignIn(userID: ghost.id, at: t0, session: session) }
            let stored = try await store.session(idHash: session.idHash)
            #expect(stored == nil)
        }
    }

    // MARK: sessions

    @Test(arguments: StoreKind.all) func sessionsDeleteAndExpire(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice")
            try await store.saveUsers([alice])
            let old = makeSession(for: alice, expires: t0 + 10)
            let exact = makeSession(for: alice, expires: t0 + 100)
            let fresh = makeSession(for: alice, expires: t0 + 1000)
            for session in [old, exact, fresh] { _ = try await store.recordSignIn(userID: alice.id, at: t0, session: session.session) }

            #expect(try await store.deleteExpiredSessions(before: t0 + 100) == 2)
            #expect(try await store.session(idHash: old.session.idHash) == nil)
            #expect(try await store.session(idHash: exact.session.idHash) == nil)
            #expect(try await store.session(idHash: fresh.session.idHash) != nil)
            #expect(try await store.deleteExpiredSessions(before: t0 + 100) == 0)

            let position = try await feedPosition(store)
            try await store.deleteSession(idHash: fresh.session.idHash)
            #expect(try await store.session(idHash: fresh.session.idHash) == nil)
            #expect(try await changes(store, after: position).map(\.kind) == [.session])
            try await store.deleteSession(idHash: "no-such-hash")  // harmless
        }
    }

    @Test(arguments: StoreKind.all) func sessionsAreStoredByHashOnly(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice")
            try await store.saveUsers([alice])
            let (cookie, session) = makeSession(for: alice)
            _ = try await store.recordSignIn(userID: alice.id, at: t0, session: session)
            #expect(try await store.session(idHash: cookie) == nil)
            #expect(try await store.session(idHash: Secrets.hash(cookie))?.userID == alice.id)
        }
    }

    // MARK: tokens

    @Test(arguments: StoreKind.all) func tokensInsertListRevoke(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice"), bob = makeUser("bob")
            try await store.saveUsers([alice, bob])
            let a1 = makeToken(for: alice, created: t0), a2 = makeToken(for: alice, created: t0 + 1), b1 = makeToken(for: bob, created: t0 + 2)
            for token in [a1, a2, b1] { try await store.insertToken(token.record) }

            #expect(try await store.tokens(userID: alice.id).map(\.id) == [a1.record.id, a2.record.id])
            #expect(try await store.tokens(userID: nil).map(\.id) == [a1.record.id, a2.record.id, b1.record.id])
            #expect(try await store.tokens(userID: "usr_nobody").isEmpty)
            #expect(try await store.token(hash: Secrets.hash(a1.token)) == a1.record)
            #expect(try await store.token(hash: a1.token) == nil)

            let position = try await feedPosition(store)
            let revoked = try await store.revokeToken(id: a1.record.id, at: t0 + 50)
            #expect(revoked.revokedAt == t0 + 50)
            let again = try await store.revokeToken(id: a1.record.id, at: t0 + 99)
            #expect(again.revokedAt == t0 + 50)  // the first revocation time stays
            #expect(try await store.token(hash: a1.record.tokenHash)?.revokedAt == t0 + 50)
            #expect(try await changes(store, after: position).map(\.key).allSatisfy { $0 == a1.record.tokenHash })

            await #expect(throws: StoreError.notFound("no token with id tok_missing")) { _ = try await store.revokeToken(id: "tok_missing", at: t0) }
        }
    }

    @Test(arguments: StoreKind.all) func tokenForAnUnknownUserOrWithADuplicateHashIsRefused(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice")
            try await store.saveUsers([alice])
            await #expect(throws: StoreError.self) { try await store.insertToken(makeToken(for: makeUser("ghost")).record) }
            let token = makeToken(for: alice)
            try await store.insertToken(token.record)
            var copy = token.record
            copy.id = "tok_copy"
            await #expect(throws: StoreError.self) { try await store.insertToken(copy) }
            #expect(try await store.tokens(userID: nil).count == 1)
        }
    }

    // MARK: signing keys

    @Test(arguments: StoreKind.all) func addSigningKeyChecksTheExpectedCurrentKey(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let first = makeKey(created: t0)
            #expect(try await store.addSigningKey(first, retiring: "kid-that-is-not-there", at: t0) == false)
            #expect(try await store.addSigningKey(first, retiring: nil, at: t0))
            let second = makeKey(created: t0 + 10)
            #expect(try await store.addSigningKey(second, retiring: nil, at: t0 + 10) == false)
            #expect(try await store.addSigningKey(second, retiring: "wrong", at: t0 + 10) == false)
            #expect(try await store.signingKeys().map(\.kid) == [first.kid])
            #expect(try await store.addSigningKey(second, retiring: first.kid, at: t0 + 10))

            let keys = try await store.signingKeys()
            #expect(keys.map(\.kid) == [first.kid, second.kid])
            #expect(keys[0].retiredAt == t0 + 10)
            #expect(keys[1].retiredAt == nil)
            #expect(keys[1].privateKey == second.privateKey)
            #expect(try AssertionKey(rawPrivateKey: keys[1].privateKey).kid == second.kid)

            try await store.deleteSigningKeys(retiredBefore: t0 + 10)  // retired exactly then: kept
            #expect(try await store.signingKeys().count == 2)
            try await store.deleteSigningKeys(retiredBefore: t0 + 11)
            #expect(try await store.signingKeys().map(\.kid) == [second.kid])
        }
    }

    @Test(arguments: StoreKind.all) func rotateRetiresTheOldKey(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await KeyManager.ensureSigningKey(store, now: t0)
            let original = try #require(try await store.signingKeys().first?.kid)
            let rotation = try await KeyManager.rotate(store, now: t0 + 60)
            #expect(rotation.retired == original)
            #expect(rotation.new != original)
            let keys = try await store.signingKeys()
            #expect(keys.count == 2)
            #expect(keys.first { $0.kid == original }?.retiredAt == t0 + 60)
            #expect(keys.first { $0.kid == rotation.new }?.retiredAt == nil)
            #expect(keys.filter { $0.retiredAt == nil }.count == 1)
        }
    }

    // MARK: change feed

    @Test(arguments: StoreKind.all) func changesComeInOrderAndHonourTheLimit(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let start = try await feedPosition(store)
            let alice = makeUser("alice")
            try await store.saveUsers([alice])
            let token = makeToken(for: alice)
            try await store.insertToken(token.record)
            try await store.saveConsent(Consent(userID: alice.id, grantedAt: t0, expiresAt: t0 + 3600))
            let key = makeKey(created: t0)
            _ = try await store.addSigningKey(key, retiring: nil, at: t0)

            let feed = try await changes(store, after: start)
            #expect(feed.map(\.kind) == [.user, .token, .consent, .key])
            #expect(feed.map(\.key) == [alice.id, token.record.tokenHash, alice.id, key.kid])
            #expect(feed.map(\.id) == feed.map(\.id).sorted())
            #expect(Set(feed.map(\.id)).count == feed.count)

            let limited = try #require(try await store.changes(after: start, limit: 2))
            #expect(limited == Array(feed.prefix(2)))
            let rest = try #require(try await store.changes(after: limited[1].id, limit: 100))
            #expect(rest == Array(feed.dropFirst(2)))
            #expect(try await store.changes(after: feed.last!.id, limit: 100) == [])
            #expect(try await feedPosition(store) == feed.last!.id)
        }
    }

    @Test(arguments: StoreKind.all) func aReaderBehindPrunedRowsIsToldToReload(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            for name in ["a", "b", "c", "d"] { try await store.saveUsers([makeUser(name)]) }
            let feed = try await changes(store, after: 0)
            #expect(feed.count == 4)
            try await store.pruneChanges(before: Date().addingTimeInterval(3600))
            // The newest row is kept so positions never go backwards.
            #expect(try await store.changes(after: feed[3].id, limit: 10) == [])
            #expect(try await store.changes(after: feed[2].id, limit: 10) == [feed[3]])
            #expect(try await store.changes(after: feed[1].id, limit: 10) == nil)
            #expect(try await store.changes(after: feed[0].id, limit: 10) == nil)
            #expect(try await feedPosition(store) == feed[3].id)
        }
    }

    /// A reader whose snapshot saw an empty feed (position 0) and that then stalled past the
    /// retention window has missed rows just the same: it must reload too.
    @Test(arguments: StoreKind.all) func aReaderAtPositionZeroBehindPrunedRowsIsToldToReload(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            #expect(try await feedPosition(store) == 0)
            for name in ["a", "b", "c"] { try await store.saveUsers([makeUser(name)]) }
            try await store.pruneChanges(before: Date().addingTimeInterval(3600))
            #expect(try await store.changes(after: 0, limit: 10) == nil)
        }
    }

    @Test(arguments: StoreKind.all) func pruningKeepsRecentRows(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            for name in ["a", "b"] { try await store.saveUsers([makeUser(name)]) }
            try await store.pruneChanges(before: Date().addingTimeInterval(-3600))
            #expect(try await changes(store, after: 0).count == 2)
        }
    }

    // MARK: snapshot

    @Test(arguments: StoreKind.all) func snapshotExcludesExpiredSessionsRevokedTokensAndEndedImpersonations(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice", role: "super_admin"), bob = makeUser("bob")
            try await store.saveUsers([alice, bob])
            let live = makeSession(for: alice, expires: t0 + 3600)
            let dead = makeSession(for: alice, expires: t0 - 1)
            let boundary = makeSession(for: alice, expires: t0)
            for session in [live, dead, boundary] { _ = try await store.recordSignIn(userID: alice.id, at: t0 - 7200, session: session.session) }
            let kept = makeToken(for: alice), revoked = makeToken(for: alice)
            try await store.insertToken(kept.record)
            try await store.insertToken(revoked.record)
            _ = try await store.revokeToken(id: revoked.record.id, at: t0)
            _ = try await store.addSigningKey(makeKey(created: t0), retiring: nil, at: t0)
            try await store.saveConsent(Consent(userID: bob.id, grantedAt: t0, expiresAt: t0 + 60))
            let ended = makeImpersonation(actor: alice.id, target: bob.id, ended: t0)
            #expect(try await store.startImpersonation(ended))
            let open = makeImpersonation(actor: alice.id, target: bob.id)
            #expect(try await store.startImpersonation(open))

            let snapshot = try await store.snapshot(now: t0)
            #expect(Set(snapshot.users.map(\.username)) == ["alice", "bob"])
            #expect(snapshot.sessions.map(\.idHash) == [live.session.idHash])
            #expect(snapshot.tokens.map(\.id) == [kept.record.id])
            #expect(snapshot.keys.count == 1)
            #expect(snapshot.consents.map(\.userID) == [bob.id])
            #expect(snapshot.impersonations.map(\.id) == [open.id])
            #expect(snapshot.changeID == (try await changes(store, after: 0)).last?.id)
        }
    }

    // MARK: consent

    @Test(arguments: StoreKind.all) func consentIsUpserted(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let bob = makeUser("bob")
            try await store.saveUsers([bob])
            #expect(try await store.consent(userID: bob.id) == nil)
            let first = Consent(userID: bob.id, grantedAt: t0, expiresAt: t0 + 3600)
            try await store.saveConsent(first)
            #expect(try await store.consent(userID: bob.id) == first)
            let revoked = Consent(userID: bob.id, grantedAt: t0, expiresAt: t0 + 3600, revokedAt: t0 + 5)
            try await store.saveConsent(revoked)
            #expect(try await store.consent(userID: bob.id) == revoked)
            await #expect(throws: StoreError.self) {
                try await store.saveConsent(Consent(userID: "usr_ghost", grantedAt: t0, expiresAt: t0 + 1))
            }
        }
    }

    // MARK: impersonation

    @Test(arguments: StoreKind.all) func oneOpenImpersonationPerActor(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let first = makeImpersonation(actor: "usr_admin", target: "usr_a")
            #expect(try await store.startImpersonation(first))
            #expect(try await store.startImpersonation(makeImpersonation(actor: "usr_admin", target: "usr_b")) == false)
            #expect(try await store.startImpersonation(makeImpersonation(actor: "usr_other", target: "usr_a")))
            #expect(try await store.impersonations(activeOnly: true).count == 2)

            var ended = first
            ended.endedAt = t0 + 10
            ended.endReason = .exit
            try await store.updateImpersonation(ended)
            #expect(try await store.impersonation(id: first.id) == ended)
            let second = makeImpersonation(actor: "usr_admin", target: "usr_b")
            #expect(try await store.startImpersonation(second))
            #expect(try await store.impersonations(activeOnly: true).map(\.actorID).sorted() == ["usr_admin", "usr_other"])
            #expect(try await store.impersonations(activeOnly: false).count == 3)

            // The unique index, not only the check in startImpersonation: re-opening the ended
            // session while the second is open must fail.
            var reopened = ended
            reopened.endedAt = nil
            reopened.endReason = nil
            await #expect(throws: StoreError.self) { try await store.updateImpersonation(reopened) }
            #expect(try await store.impersonation(id: first.id)?.endedAt == t0 + 10)
        }
    }

    @Test(arguments: StoreKind.all) func updateImpersonationKeepsEveryField(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            var session = makeImpersonation(actor: "usr_admin", target: "usr_a")
            #expect(try await store.startImpersonation(session))
            session.expiresAt = t0 + 7200
            session.mode = .readWrite
            session.reason = "extended: still broken"
            try await store.updateImpersonation(session)
            #expect(try await store.impersonation(id: session.id) == session)
            #expect(try await store.impersonation(id: "imp_missing") == nil)
        }
    }

    // MARK: concurrency

    @Test(arguments: StoreKind.all) func manyConcurrentWritesOnOneConnection(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice")
            try await store.saveUsers([alice])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    group.addTask { try await store.insertToken(makeToken(for: alice, created: t0 + Double(index)).record) }
                    group.addTask { _ = try await store.tokens(userID: alice.id) }
                }
                try await group.waitForAll()
            }
            #expect(try await store.tokens(userID: alice.id).count == 40)
        }
    }
}
