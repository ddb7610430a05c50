import Testing
@testable import ActAsStore

/// SPEC §10.2: requests that need only memory go on for `store.grace` after the last contact.
@Suite struct StoreHealthTests {
    @Test func reachableIsAlwaysWithinGrace() {
        let t0 = ContinuousClock.now
        let health = StoreHealth(grace: .seconds(10), now: t0)
        #expect(health.withinGrace(at: t0 + .seconds(3600)))
    }

    @Test func unreachableCountsFromTheLastContact() {
        let t0 = ContinuousClock.now
        let health = StoreHealth(grace: .seconds(10), now: t0)
        health.contact(at: t0 + .seconds(5))
        #expect(health.lost())
        #expect(health.withinGrace(at: t0 + .seconds(15)))
        #expect(!health.withinGrace(at: t0 + .seconds(16)))
        #expect(!health.isReachable)
        #expect(health.contact(at: t0 + .seconds(20)))
        #expect(health.withinGrace(at: t0 + .seconds(100)))
    }
}
