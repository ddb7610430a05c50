import ActAsCore
import ActAsStore
import ActAsStorePostgres
import Foundation
import Testing

/// Migration 10 (SPEC §10.3): one-use sign-in flows and logout tokens, over both stores and
/// across two connections (two instances).
struct OneUseClaimTests {
    @Test(arguments: StoreKind.all) func onceAcrossInstancesPerKind(kind: StoreKind) async throws {
        try await withTwoStores(kind) { first, second, _ in
            var answers: [Bool] = []
            answers.append(try await first.claimOnce(.signInFlow, key: "k1", until: t0 + 600, now: t0))
            answers.append(try await second.claimOnce(.signInFlow, key: "k1", until: t0 + 600, now: t0 + 1))
            answers.append(try await first.claimOnce(.signInFlow, key: "k1", until: t0 + 600, now: t0 + 599))
            // The same key of the other kind is another thing.
            answers.append(try await second.claimOnce(.logoutToken, key: "k1", until: t0 + 600, now: t0 + 1))
            #expect(answers == [true, false, false, true])
        }
    }

    @Test(arguments: StoreKind.all) func expiredClaimsAreDeletedByTheNextClaim(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            var answers: [Bool] = []
            answers.append(try await store.claimOnce(.signInFlow, key: "a", until: t0 + 10, now: t0))
            answers.append(try await store.claimOnce(.logoutToken, key: "b", until: t0 + 100, now: t0))
            let before = try await store.oneUseClaimCount()
            answers.append(try await store.claimOnce(.signInFlow, key: "c", until: t0 + 700, now: t0 + 10))
            let after = try await store.oneUseClaimCount()  // "a" went, "c" came
            // Past its time a key may be claimed again (its holder refuses it by time anyway).
            answers.append(try await store.claimOnce(.signInFlow, key: "a", until: t0 + 800, now: t0 + 11))
            #expect(answers == [true, true, true, true])
            #expect(before == 2 && after == 2)
        }
    }

    @Test(arguments: StoreKind.all) func concurrentClaimsOfOneKeyHaveOneWinner(kind: StoreKind) async throws {
        try await withTwoStores(kind) { first, second, _ in
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<8 {
                    let store = index.isMultiple(of: 2) ? first : second
                    group.addTask { try await store.claimOnce(.logoutToken, key: "same", until: t0 + 600, now: t0) }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(wins == 1)
        }
    }
}
