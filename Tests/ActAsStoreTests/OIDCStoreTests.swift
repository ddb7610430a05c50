import ActAsCore
import ActAsStore
import ActAsStorePostgres
import Foundation
import Testing

/// Migration 8 (SPEC §10.3): users by (issuer, sub), OIDC sign-ins, over both stores.
struct OIDCStoreTests {
    static let issuer = "https://idp.example.com"

    func session(_ hash: String, user: String) -> SignInSession {
        SignInSession(idHash: hash, userID: user, csrfToken: "csrf-\(hash)", createdAt: t0, expiresAt: t0 + 3600, clientIP: "127.0.0.1")
    }

    func record(_ hash: String, subject: String = "sub-1", sid: String = "sid-1") -> OIDCSignInRecord {
        OIDCSignInRecord(sessionHash: hash, issuer: Self.issuer, subject: subject, providerSessionID: sid, idToken: "h.p.s-\(hash)")
    }

    @Test(arguments: StoreKind.all) func firstSignInCreatesLinksAndRecords(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice", groups: ["a", "b"])
            let stored = try await store.recordOIDCSignIn(record("h1"), user: alice, session: session("h1", user: alice.id), at: t0)
            #expect(stored.username == "alice" && stored.groups == ["a", "b"] && stored.lastLogin == t0 && stored.status == .active)
            #expect(try await store.oidcUserID(issuer: Self.issuer, subject: "sub-1") == alice.id)
            #expect(try await store.oidcUserID(issuer: "https://other", subject: "sub-1") == nil)
            #expect(try await store.oidcSignIn(sessionHash: "h1") == record("h1"))
            #expect(try await store.session(idHash: "h1")?.userID == alice.id)
            #expect(try await store.users(email: "ALICE@example.com").map(\.id) == [alice.id])
            #expect(try await store.users(email: "").isEmpty)
        }
    }

    @Test(arguments: StoreKind.all) func laterSignInsUpdateAndRename(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice")
            _ = try await store.recordOIDCSignIn(record("h1"), user: alice, session: session("h1", user: alice.id), at: t0)
            var renamed = alice
            renamed.username = "alice2"
            renamed.role = "manager"
            let stored = try await store.recordOIDCSignIn(record("h2"), user: renamed, session: session("h2", user: alice.id), at: t0 + 10)
            #expect(stored.username == "alice2" && stored.role == "manager" && stored.lastLogin == t0 + 10)
            #expect(try await store.user(username: "alice") == nil)
            #expect(try await store.users().count == 1)
        }
    }

    @Test(arguments: StoreKind.all) func conflictsAndRefusals(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice"), bob = makeUser("bob")
            try await store.saveUsers([bob, makeUser("sus", status: .suspended)])
            _ = try await store.recordOIDCSignIn(record("h1"), user: alice, session: session("h1", user: alice.id), at: t0)
            // The subject is linked to alice: bob cannot take it.
            await #expect(throws: StoreError.self) {
                _ = try await store.recordOIDCSignIn(record("h2"), user: bob, session: session("h2", user: bob.id), at: t0)
            }
            #expect(try await store.session(idHash: "h2") == nil)
            // A rename onto a taken username is a conflict, and nothing is written.
            var taken = alice
            taken.username = "bob"
            await #expect(throws: StoreError.self) {
                _ = try await store.recordOIDCSignIn(record("h3"), user: taken, session: session("h3", user: alice.id), at: t0)
            }
            #expect(try await store.user(id: alice.id)?.username == "alice")
            // Suspended users do not sign in.
            let sus = try #require(try await store.user(username: "sus"))
            await #expect(throws: StoreError.notFound("user \(sus.id) may not sign in")) {
                _ = try await store.recordOIDCSignIn(record("h4", subject: "s-sus"), user: sus, session: session("h4", user: sus.id), at: t0)
            }
        }
    }

    @Test(arguments: StoreKind.all) func aUserLinkedToOneSubjectIsNotLinkedToAnother(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice")
            _ = try await store.recordOIDCSignIn(record("h1"), user: alice, session: session("h1", user: alice.id), at: t0)
            // Another subject of the same issuer, matched to alice (e.g. by a verified email).
            await #expect(throws: StoreError.self) {
                _ = try await store.recordOIDCSignIn(record("h2", subject: "sub-2"), user: alice, session: session("h2", user: alice.id), at: t0)
            }
            #expect(try await store.oidcUserID(issuer: Self.issuer, subject: "sub-2") == nil)
            #expect(try await store.session(idHash: "h2") == nil)
            // The same subject again is fine.
            _ = try await store.recordOIDCSignIn(record("h3"), user: alice, session: session("h3", user: alice.id), at: t0)
        }
    }

    @Test(arguments: StoreKind.all) func signInsByProviderSessionOrSubjectGoWithTheirSession(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = makeUser("alice")
            _ = try await store.recordOIDCSignIn(record("h1", sid: "p1"), user: alice, session: session("h1", user: alice.id), at: t0)
            _ = try await store.recordOIDCSignIn(record("h2", sid: "p2"), user: alice, session: session("h2", user: alice.id), at: t0)
            #expect(try await store.oidcSignIns(issuer: Self.issuer, providerSessionID: "p1", subject: nil).map(\.sessionHash) == ["h1"])
            #expect(Set(try await store.oidcSignIns(issuer: Self.issuer, providerSessionID: nil, subject: "sub-1").map(\.sessionHash)) == ["h1", "h2"])
            #expect(try await store.oidcSignIns(issuer: "https://other", providerSessionID: nil, subject: "sub-1").isEmpty)
            try await store.deleteSession(idHash: "h1")
            #expect(try await store.oidcSignIn(sessionHash: "h1") == nil)
            #expect(try await store.oidcIdentities().map(\.userID) == [alice.id])
        }
    }

    /// `actas store migrate` keeps OIDC users linked to their subjects.
    @Test(.enabled(if: StoreKind.all.contains(.postgres))) func storeMigrateCopiesTheLinks() async throws {
        try await withStore(.sqlite) { source in
            let alice = makeUser("alice")
            _ = try await source.recordOIDCSignIn(record("h1"), user: alice, session: session("h1", user: alice.id), at: t0)
            let contents = try await StoreContents.read(from: source, now: t0)
            #expect(contents.counts.contains { $0 == ("identity provider links", 1) })
            try await withStore(.postgres) { target in
                try await #require(target as? PostgresStore).importContents(contents)
                #expect(try await target.oidcUserID(issuer: Self.issuer, subject: "sub-1") == alice.id)
            }
        }
    }
}
