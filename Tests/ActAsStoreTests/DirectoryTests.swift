import ActAsCore
import ActAsCrypto
import Foundation
import Testing
@testable import ActAsStore

private func input(_ username: String, origin: String = "", _ configure: (inout UserRecordInput) -> Void = { _ in }) -> UserRecordInput {
    var record = UserRecordInput(username: username, origin: origin)
    configure(&record)
    return record
}

/// A directory on a fresh store with a live state, like the server's.
private func withDirectory<T>(_ body: (Directory, any Store, LiveState) async throws -> T) async throws -> T {
    try await withStore { store in
        let live = LiveState()
        try await StateSync(store: store, state: live).loadSnapshot(now: t0)
        return try await body(Directory(store: store, live: live, knownRoles: roles, hasher: fastHasher), store, live)
    }
}

private func messages(_ error: any Error) -> [String] {
    (error as? ImportError)?.messages ?? ["not an ImportError: \(error)"]
}

@Suite("Directory")
struct DirectoryTests {
    // MARK: save

    @Test func createsWithDefaultsThenUpsertsKeepingUnspecifiedFields() async throws {
        try await withDirectory { directory, store, live in
            let created = try await directory.save([input("alice") {
                $0.email = "alice@example.com"
                $0.name = "Alice Example"
                $0.groups = ["sales", "emea"]
                $0.orgUnit = "acme/emea/sales"
                $0.password = "first password"
            }], now: t0)
            #expect(created == Directory.ImportSummary(created: ["alice"], updated: []))
            let first = try #require(try await store.user(username: "alice"))
            #expect(first.role == "employee")  // the default
            #expect(first.status == .active)
            #expect(first.id.hasPrefix("usr_"))
            #expect(UserValidation.checkID(first.id) == nil)
            let hash = try #require(first.passwordHash)
            #expect(!hash.contains("first password"))
            #expect(fastHasher.verify("first password", against: hash))
            #expect(live.read { $0.user(username: "alice") } == first)

            let updated = try await directory.save([input("alice") { $0.role = "manager" }], now: t0 + 60)
            #expect(updated == Directory.ImportSummary(created: [], updated: ["alice"]))
            let second = try #require(try await store.user(username: "alice"))
            #expect(second.role == "manager")
            #expect(second.id == first.id)
            #expect(second.email == "alice@example.com")
            #expect(second.name == "Alice Example")
            #expect(second.groups == ["sales", "emea"])
            #expect(second.orgUnit == "acme/emea/sales")
            #expect(second.passwordHash == hash)
            #expect(second.createdAt == t0)
            #expect(second.updatedAt == t0 + 60)
            #expect(live.read { $0.users[first.id]?.role } == "manager")
        }
    }

    @Test func importsMayCarryIDAndLastLogin() async throws {
        try await withDirectory { directory, store, _ in
            _ = try await directory.save([input("bob") {
                $0.id = "emp-0042"
                $0.lastLogin = t0 - 86400
                $0.status = .invited
            }], now: t0)
            let bob = try #require(try await store.user(username: "bob"))
            #expect(bob.id == "emp-0042")
            #expect(bob.lastLogin == t0 - 86400)
            #expect(bob.status == .invited)
            // Repeating the same id is fine.
            _ = try await directory.save([input("bob") { $0.id = "emp-0042"; $0.name = "Bob" }], now: t0)
            #expect(try await store.user(id: "emp-0042")?.name == "Bob")
        }
    }

    @Test func validationErrorsAreCollectedWithOriginsAndNothingIsSaved() async throws {
        try await withDirectory { directory, store, _ in
            let inputs = [
                input("good", origin: "users.csv:2"),
                input("badrole", origin: "users.csv:3") { $0.role = "wizard" },
                input("comma", origin: "users.csv:4") { $0.groups = ["a,b"] },
                input("mail", origin: "users.csv:5") { $0.email = "x@example.com\r\nX-Injected: 1" },
                input("named", origin: "users.csv:6") { $0.name = "Eve\u{7}" },
                input("unit", origin: "users.csv:7") { $0.orgUnit = "acme//x" },
                input("good", origin: "users.csv:8"),
                input("bad name", origin: "users.csv:9"),
                input("emptygroup", origin: "users.csv:10") { $0.groups = [""] },
                input("badid", origin: "users.csv:11") { $0.id = "has space" },
                input("nopass", origin: "users.csv:12") { $0.password = "" },
                input("trailing", origin: "users.csv:13") { $0.orgUnit = "acme/" },
                input("mailcomma", origin: "users.csv:14") { $0.email = "a@x.com,b@x.com" },
            ]
            let error = await #expect(throws: ImportError.self) { try await directory.save(inputs, now: t0) }
            let found = error.map(messages) ?? []
            for line in 3...14 {
                #expect(found.contains { $0.hasPrefix("users.csv:\(line): ") }, "no message for line \(line): \(found)")
            }
            #expect(!found.contains { $0.hasPrefix("users.csv:2: ") })
            #expect(found.contains { $0.hasPrefix("users.csv:8: ") && $0.contains("twice") })
            #expect(found.contains { $0.contains("wizard") })
            let saved = try await store.users()
            #expect(saved.isEmpty)
        }
    }

    @Test func oneBadRecordSavesNothingAndLeavesExistingUsersAlone() async throws {
        try await withDirectory { directory, store, live in
            _ = try await directory.save([input("alice") { $0.email = "alice@example.com" }], now: t0)
            let before = try await store.users()
            let generation = live.generation
            await #expect(throws: ImportError.self) {
                try await directory.save([
                    input("alice") { $0.email = "changed@example.com" },
                    input("bob"),
                    input("carol") { $0.role = "nope" },
                ], now: t0)
            }
            #expect(try await store.users() == before)
            #expect(live.generation == generation)
        }
    }

    @Test func changingTheIDOfAnExistingUserIsRefused() async throws {
        try await withDirectory { directory, store, _ in
            _ = try await directory.save([input("alice") { $0.id = "usr_a1" }], now: t0)
            let error = await #expect(throws: ImportError.self) {
                try await directory.save([input("alice", origin: "users.json: user 1") { $0.id = "usr_a2" }], now: t0)
            }
            #expect(error.map(messages)?.first?.hasPrefix("users.json: user 1: ") == true)
            #expect(try await store.user(username: "alice")?.id == "usr_a1")
        }
    }

    @Test func takingAnotherUsersIDIsRefused() async throws {
        try await withDirectory { directory, store, _ in
            _ = try await directory.save([input("alice") { $0.id = "usr_a1" }], now: t0)
            await #expect(throws: ImportError.self) { try await directory.save([input("mallory") { $0.id = "usr_a1" }], now: t0) }
            #expect(try await store.user(username: "mallory") == nil)
        }
    }

    @Test func mustBeNewAndMustExist() async throws {
        try await withDirectory { directory, _, _ in
            _ = try await directory.save([input("alice")], mustBeNew: true, now: t0)
            await #expect(throws: ImportError.self) { try await directory.save([input("alice")], mustBeNew: true, now: t0) }
            await #expect(throws: ImportError.self) { try await directory.save([input("zed")], mustExist: true, now: t0) }
            _ = try await directory.save([input("alice") { $0.name = "A" }], mustExist: true, now: t0)
        }
    }

    @Test func suspendingThroughSaveEndsSessions() async throws {
        try await withDirectory { directory, store, live in
            _ = try await directory.save([input("alice") { $0.password = "pw-alice" }], now: t0)
            guard case .signedIn(_, let cookie, _) = try await directory.signIn(username: "alice", password: "pw-alice", clientIP: "192.0.2.1", ttl: 3600, now: t0) else {
                Issue.record("sign-in failed")
                return
            }
            _ = try await directory.save([input("alice") { $0.status = .suspended }], now: t0)
            #expect(live.principal(sessionHash: Secrets.hash(cookie), now: t0) == nil)
            #expect(try await store.session(idHash: Secrets.hash(cookie)) == nil)
        }
    }

    // MARK: sign-in

    @Test func signInCreatesASessionStoredByHash() async throws {
        try await withDirectory { directory, store, live in
            _ = try await directory.save([input("ivy") { $0.password = "pw-ivy"; $0.status = .invited }], now: t0)
            let result = try await directory.signIn(username: "ivy", password: "pw-ivy", clientIP: "198.51.100.7", ttl: 3600, now: t0 + 5)
            guard case .signedIn(let user, let cookie, let session) = result else {
                Issue.record("expected signedIn, got \(result)")
                return
            }
            #expect(user.status == .active)
            #expect(user.lastLogin == t0 + 5)
            #expect(cookie.count == 43)
            #expect(session.idHash == Secrets.hash(cookie))
            #expect(session.idHash != cookie)
            #expect(session.expiresAt == t0 + 5 + 3600)
            #expect(session.clientIP == "198.51.100.7")
            #expect(!session.csrfToken.isEmpty && session.csrfToken != cookie)
            #expect(try await store.session(idHash: Secrets.hash(cookie)) == session)
            #expect(try await store.session(idHash: cookie) == nil)
            #expect(live.principal(sessionHash: Secrets.hash(cookie), now: t0 + 6)?.user.status == .active)
            #expect(try await store.user(username: "ivy")?.status == .active)

            // A second sign-in gets a different cookie.
            guard case .signedIn(_, let again, _) = try await directory.signIn(username: "ivy", password: "pw-ivy", clientIP: "x", ttl: 3600, now: t0 + 6) else {
                Issue.record("second sign-in failed")
                return
            }
            #expect(again != cookie)
        }
    }

    @Test func wrongPasswordUnknownUserAndNoPassword() async throws {
        try await withDirectory { directory, store, _ in
            _ = try await directory.save([input("alice") { $0.password = "pw-alice" }, input("oidc-only")], now: t0)
            let wrong = try await directory.signIn(username: "alice", password: "pw-alicE", clientIP: "x", ttl: 60, now: t0)
            guard case .invalidCredentials(let user) = wrong else {
                Issue.record("expected invalidCredentials, got \(wrong)")
                return
            }
            #expect(user?.username == "alice")
            let unknown = try await directory.signIn(username: "nobody", password: "pw", clientIP: "x", ttl: 60, now: t0)
            guard case .invalidCredentials(nil) = unknown else {
                Issue.record("expected invalidCredentials(nil), got \(unknown)")
                return
            }
            let noPassword = try await directory.signIn(username: "oidc-only", password: "anything", clientIP: "x", ttl: 60, now: t0)
            guard case .invalidCredentials = noPassword else {
                Issue.record("expected invalidCredentials, got \(noPassword)")
                return
            }
            let caseChanged = try await directory.signIn(username: "ALICE", password: "pw-alice", clientIP: "x", ttl: 60, now: t0)
            guard case .invalidCredentials = caseChanged else {
                Issue.record("expected invalidCredentials, got \(caseChanged)")
                return
            }
            let empty = try await directory.signIn(username: "alice", password: "", clientIP: "x", ttl: 60, now: t0)
            guard case .invalidCredentials = empty else {
                Issue.record("expected invalidCredentials, got \(empty)")
                return
            }
            #expect(try await store.user(username: "alice")?.lastLogin == nil)
            #expect(try await store.snapshot(now: t0).sessions.isEmpty)
        }
    }

    @Test(arguments: [User.Status.suspended, .deleted])
    func blockedUsersAreToldOnlyWithTheRightPassword(status: User.Status) async throws {
        try await withDirectory { directory, store, _ in
            _ = try await directory.save([input("sam") { $0.password = "pw-sam"; $0.status = status }], now: t0)
            let right = try await directory.signIn(username: "sam", password: "pw-sam", clientIP: "x", ttl: 60, now: t0)
            guard case .notAllowed(let user) = right else {
                Issue.record("expected notAllowed, got \(right)")
                return
            }
            #expect(user.status == status)
            let wrong = try await directory.signIn(username: "sam", password: "guess", clientIP: "x", ttl: 60, now: t0)
            guard case .invalidCredentials = wrong else {
                Issue.record("expected invalidCredentials, got \(wrong)")
                return
            }
            #expect(try await store.snapshot(now: t0).sessions.isEmpty)
            #expect(try await store.user(username: "sam")?.lastLogin == nil)
        }
    }

    @Test func signOutRemovesTheSessionFromStoreAndLiveState() async throws {
        try await withDirectory { directory, store, live in
            _ = try await directory.save([input("alice") { $0.password = "pw-alice" }], now: t0)
            guard case .signedIn(_, let cookie, let session) = try await directory.signIn(username: "alice", password: "pw-alice", clientIP: "x", ttl: 3600, now: t0) else {
                Issue.record("sign-in failed")
                return
            }
            try await directory.signOut(sessionHash: session.idHash)
            #expect(try await store.session(idHash: session.idHash) == nil)
            #expect(live.principal(sessionHash: Secrets.hash(cookie), now: t0) == nil)
            try await directory.signOut(sessionHash: session.idHash)  // twice is harmless
        }
    }

    // MARK: tokens

    @Test func tokensAreStoredByHashAndRevocable() async throws {
        try await withDirectory { directory, store, live in
            _ = try await directory.save([input("alice")], now: t0)
            let (token, record) = try await directory.createToken(for: "alice", name: "ci", now: t0)
            #expect(token.hasPrefix("actas_"))
            #expect(record.id.hasPrefix("tok_"))
            #expect(record.tokenHash == Secrets.hash(token))
            #expect(try await store.token(hash: Secrets.hash(token)) == record)
            #expect(try await store.token(hash: token) == nil)
            #expect(try await store.tokens(userID: nil).allSatisfy { $0.tokenHash != token && !$0.tokenHash.hasPrefix("actas_") })
            #expect(live.principal(tokenHash: Secrets.hash(token))?.user.username == "alice")

            let revoked = try await directory.revokeToken(id: record.id, now: t0 + 1)
            #expect(revoked.revokedAt == t0 + 1)
            #expect(live.principal(tokenHash: Secrets.hash(token)) == nil)
        }
    }

    @Test(arguments: [User.Status.suspended, .deleted])
    func tokensAreRefusedForBlockedUsers(status: User.Status) async throws {
        try await withDirectory { directory, store, _ in
            _ = try await directory.save([input("sam") { $0.status = status }], now: t0)
            await #expect(throws: StoreError.self) { _ = try await directory.createToken(for: "sam", name: "ci", now: t0) }
            await #expect(throws: StoreError.self) { _ = try await directory.createToken(for: "ghost", name: "ci", now: t0) }
            #expect(try await store.tokens(userID: nil).isEmpty)
        }
    }

    @Test func setStatusSuspendsEverywhere() async throws {
        try await withDirectory { directory, _, live in
            _ = try await directory.save([input("alice")], now: t0)
            let (token, _) = try await directory.createToken(for: "alice", name: "ci", now: t0)
            _ = try await directory.setStatus("alice", .suspended, now: t0)
            #expect(live.principal(tokenHash: Secrets.hash(token)) == nil)
            _ = try await directory.setStatus("alice", .active, now: t0)
            #expect(live.principal(tokenHash: Secrets.hash(token)) != nil)
            await #expect(throws: StoreError.self) { _ = try await directory.setStatus("ghost", .active, now: t0) }
        }
    }
}
