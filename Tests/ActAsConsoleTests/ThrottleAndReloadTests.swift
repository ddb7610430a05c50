import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsSessions
import Foundation
import Testing

@testable import ActAsConsole

@Suite("Sign-in throttle")
struct SignInThrottleTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func attempt(_ account: String, _ address: String, device: String? = nil) -> SignInAttempt {
        SignInAttempt(account: account, address: address, device: device)
    }

    /// An attempt that failed: `begin` counted it, nothing gives it back.
    func fail(_ limiter: LoginRateLimiter, _ attempt: SignInAttempt, at now: Date) {
        #expect(limiter.begin(attempt, now: now) == nil)
    }

    @Test func delaysGrowExponentiallyToTheCap() {
        #expect((0..<5).map { LoginRateLimiter.delay(failures: $0, free: 5, cap: 900) } == [0, 0, 0, 0, 0])
        #expect((5..<11).map { LoginRateLimiter.delay(failures: $0, free: 5, cap: 900) } == [1, 2, 4, 8, 16, 32])
        #expect(LoginRateLimiter.delay(failures: 15, free: 5, cap: 900) == 900)
        #expect(LoginRateLimiter.delay(failures: Int.max, free: 5, cap: 900) == 900)
    }

    @Test func networks() {
        #expect(LoginRateLimiter.networkKey("198.51.100.7") == "198.51.100.0/24")
        #expect(LoginRateLimiter.networkKey("2001:db8:1:2::1") == "2001:db8:1:2::/64")
        #expect(LoginRateLimiter.networkKey("2001:DB8:1:2:ffff::9") == "2001:db8:1:2::/64")
        #expect(LoginRateLimiter.addressKey("192.0.2.1") == "192.0.2.1")
    }

    @Test func anAttackersNetworkSlowsOnlyItself() {
        let limiter = LoginRateLimiter(maxPerAccount: 5, maxPerAddress: 1000, window: 900)
        for index in 0..<5 { fail(limiter, attempt(index.isMultiple(of: 2) ? "Alice" : "alice", "198.51.100.\(index)"), at: start) }
        // The same /24 (any address in it) waits, case-insensitively…
        #expect(limiter.begin(attempt("aLiCe", "198.51.100.200"), now: start) == 1)
        // …the owner's network does not, nor does another account.
        #expect(limiter.begin(attempt("alice", "203.0.113.9"), now: start) == nil)
        #expect(limiter.begin(attempt("bob", "198.51.100.1"), now: start) == nil)
        // The wait doubles with every further failure, up to the window.
        var now = start + 1
        for expected in [2, 4, 8, 16] {
            fail(limiter, attempt("alice", "198.51.100.1"), at: now)
            #expect(limiter.begin(attempt("alice", "198.51.100.1"), now: now) == expected)
            now += Double(expected)
        }
    }

    @Test func aDeviceCookieHasItsOwnBudgetAndSkipsTheAddressCap() {
        let limiter = LoginRateLimiter(maxPerAccount: 5, maxPerAddress: 3, window: 900)
        for index in 0..<10 { _ = limiter.begin(attempt("alice", "192.0.2.1"), now: start + Double(index) / 10) }
        #expect(limiter.begin(attempt("alice", "192.0.2.1"), now: start + 1) != nil)
        // The owner's browser behind the same address (a shared NAT) still gets in.
        #expect(limiter.begin(attempt("alice", "192.0.2.1", device: "dev1"), now: start + 1) == nil)
        // Its own failures slow only itself.
        for _ in 0..<4 { fail(limiter, attempt("alice", "192.0.2.1", device: "dev1"), at: start + 1) }
        #expect(limiter.begin(attempt("alice", "192.0.2.1", device: "dev1"), now: start + 1) == 1)
        #expect(limiter.begin(attempt("alice", "192.0.2.1", device: "dev2"), now: start + 1) == nil)
    }

    @Test func attemptsCountBeforeTheirOutcome() {
        // Parallel guesses: each is counted when it starts, so the sixth waits even though no
        // outcome is known yet.
        let limiter = LoginRateLimiter(maxPerAccount: 5, maxPerAddress: 100, window: 900)
        for _ in 0..<5 { #expect(limiter.begin(attempt("alice", "192.0.2.1"), now: start) == nil) }
        #expect(limiter.begin(attempt("alice", "192.0.2.1"), now: start) != nil)
    }

    @Test func addressCapAcrossAccounts() {
        let limiter = LoginRateLimiter(maxPerAccount: 100, maxPerAddress: 3, window: 60)
        for name in ["a", "b", "c"] { fail(limiter, attempt(name, "192.0.2.1"), at: start) }
        #expect(limiter.begin(attempt("d", "192.0.2.1"), now: start + 10) == 50)
        #expect(limiter.begin(attempt("d", "192.0.2.2"), now: start + 10) == nil)
    }

    @Test func ipv6AddressesShareTheirSlash64() {
        let limiter = LoginRateLimiter(maxPerAccount: 100, maxPerAddress: 2, window: 60)
        fail(limiter, attempt("a", "2001:db8:1:2::1"), at: start)
        fail(limiter, attempt("b", "2001:db8:1:2:ffff:0:0:9"), at: start)
        #expect(limiter.begin(attempt("c", "2001:db8:1:2::77"), now: start) != nil)
        #expect(limiter.begin(attempt("c", "2001:db8:1:3::1"), now: start) == nil)
    }

    @Test func aQuietBucketIsForgottenAfterTheWindow() {
        let limiter = LoginRateLimiter(maxPerAccount: 1, maxPerAddress: 100, window: 900)
        for offset in [0.0, 1, 3, 7, 15, 31, 63, 127, 255, 511] { fail(limiter, attempt("alice", "x"), at: start + offset) }
        #expect(limiter.begin(attempt("alice", "x"), now: start + 511) == 512)  // 2^(10 - 1 free)
        #expect(limiter.begin(attempt("alice", "x"), now: start + 511 + 900) == nil)
    }

    @Test func successResetsTheBucketAndGivesTheAddressItsAttemptBack() {
        let limiter = LoginRateLimiter(maxPerAccount: 2, maxPerAddress: 3, window: 900)
        fail(limiter, attempt("alice", "192.0.2.1"), at: start)
        #expect(limiter.begin(attempt("alice", "192.0.2.1"), now: start) == nil)
        limiter.succeeded(attempt("ALICE", "192.0.2.1"))
        #expect(limiter.begin(attempt("alice", "192.0.2.9"), now: start) == nil)  // bucket cleared
        // The address kept its one failure; with bob's and carol's it reaches the cap of 3.
        fail(limiter, attempt("bob", "192.0.2.1"), at: start)
        fail(limiter, attempt("carol", "192.0.2.1"), at: start)
        #expect(limiter.begin(attempt("dave", "192.0.2.1"), now: start) == 900)
    }

    @Test func newLimitsApplyToTheNextAttempt() {
        let limiter = LoginRateLimiter(maxPerAccount: 5, maxPerAddress: 100, window: 900)
        for _ in 0..<2 { fail(limiter, attempt("alice", "192.0.2.1"), at: start) }
        limiter.update(maxPerAccount: 2, maxPerAddress: 100, window: 900)
        #expect(limiter.begin(attempt("alice", "192.0.2.1"), now: start) == 1)
    }

    /// A spray of usernames inside one window must not grow the tables without bound.
    @Test func aSprayOfUsernamesStaysBounded() {
        let limiter = LoginRateLimiter(maxPerAccount: 5, maxPerAddress: 10_000_000, window: 900)
        for index in 0..<(LoginRateLimiter.maxTracked * 2 + 10) {
            _ = limiter.begin(attempt("user\(index)", "192.0.2.1"), now: start + Double(index) / 1000)
        }
        #expect(limiter.trackedBuckets <= LoginRateLimiter.maxTracked)
        for _ in 0..<5 { _ = limiter.begin(attempt("fresh", "192.0.2.1"), now: start + 200) }
        #expect(limiter.begin(attempt("fresh", "192.0.2.1"), now: start + 200) != nil)
    }
}

@Suite("Device cookie")
struct DeviceCookieTests {
    let ring = KeyRing(signing: AssertionKey.generate().key, published: [])

    @Test func boundToItsAccountAndKey() throws {
        let value = try #require(DeviceCookie.issue(username: "Alice", keys: ring))
        let device = try #require(DeviceCookie.verify(value, username: "alice", keys: ring))
        #expect(value.contains(device))
        #expect(DeviceCookie.verify(value, username: "bob", keys: ring) == nil)
        #expect(DeviceCookie.verify(value, username: "alice", keys: KeyRing(signing: AssertionKey.generate().key, published: [])) == nil)
        // Still valid while the old key is in the ring after a rotation.
        let rotated = KeyRing(signing: AssertionKey.generate().key, published: ring.published)
        #expect(DeviceCookie.verify(value, username: "alice", keys: rotated) == device)
        for forged in ["", "v1..", "v2.\(device).x", value + "x", "v1.\(device).", String(value.dropLast())] {
            #expect(DeviceCookie.verify(forged, username: "alice", keys: ring) == nil)
        }
    }
}

@Suite("Policy reload")
struct PolicyReloadTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let roles = RoleRules(order: ["owner", "hr_admin", "employee"], impersonators: ["owner", "hr_admin"])
    let actor = User(id: "usr_a", username: "ann", role: "hr_admin", orgUnit: "acme", lastLogin: nil)
    let target = User(id: "usr_t", username: "tom", role: "employee", orgUnit: "acme/x", lastLogin: nil)

    func policy(maxHours: Double, impersonators: [String] = ["owner", "hr_admin"]) -> ImpersonationPolicy {
        ImpersonationPolicy(
            roles: RoleRules(order: roles.order, impersonators: impersonators),
            rules: ImpersonationRules(consentRequired: false, defaultDuration: 3600, maxDuration: maxHours * 3600))
    }

    func session(startedHoursAgo: Double, runsHours: Double) -> ImpersonationSession {
        let start = now.addingTimeInterval(-startedHoursAgo * 3600)
        return ImpersonationSession(id: "imp_1", actorID: actor.id, targetID: target.id, reason: "ticket 1234", mode: .readWrite,
                                    startedAt: start, expiresAt: start.addingTimeInterval(runsHours * 3600))
    }

    func decide(_ session: ImpersonationSession, _ policy: ImpersonationPolicy) -> PolicyReloadDecision {
        PolicyReloadDecision.decide(session, policy: policy, actor: actor, target: target, targetConsent: nil, now: now)
    }

    @Test func aLowerMaximumShortensOrEnds() {
        #expect(decide(session(startedHoursAgo: 1, runsHours: 10), policy(maxHours: 2)) == .shorten(to: now.addingTimeInterval(3600)))
        #expect(decide(session(startedHoursAgo: 3, runsHours: 10), policy(maxHours: 2)) == .end(.expired))
        #expect(decide(session(startedHoursAgo: 2, runsHours: 10), policy(maxHours: 2)) == .end(.expired))
    }

    @Test func aHigherMaximumKeepsTheEnd() {
        #expect(decide(session(startedHoursAgo: 1, runsHours: 10), policy(maxHours: 24)) == .keep)
        #expect(decide(session(startedHoursAgo: 1, runsHours: 2), policy(maxHours: 2)) == .keep)
    }

    @Test func aRoleNoLongerAllowedEndsTheSession() {
        #expect(decide(session(startedHoursAgo: 1, runsHours: 2), policy(maxHours: 24, impersonators: ["owner"])) == .end(.actorLostPermission))
    }
}

@Suite("Sign-in client address")
struct SignInClientTests {
    let trusted = [try! CIDR.parse("127.0.0.1/32").get(), try! CIDR.parse("10.0.0.0/8").get()]

    @Test func thePeerUnlessItIsATrustedProxy() {
        #expect(SignInClient.address(peer: "192.0.2.1", forwardedFor: ["198.51.100.7"], trusted: trusted) == "192.0.2.1")
        #expect(SignInClient.address(peer: "127.0.0.1", forwardedFor: ["198.51.100.7"], trusted: []) == "127.0.0.1")
    }

    @Test func theNearestUntrustedHopBehindTrustedProxies() {
        #expect(SignInClient.address(peer: "127.0.0.1", forwardedFor: ["198.51.100.7"], trusted: trusted) == "198.51.100.7")
        // A forged entry on the left is never used.
        #expect(SignInClient.address(peer: "127.0.0.1", forwardedFor: ["1.2.3.4, 198.51.100.7", "10.1.2.3"], trusted: trusted) == "198.51.100.7")
        #expect(SignInClient.address(peer: "127.0.0.1", forwardedFor: ["2001:DB8::1"], trusted: trusted) == "2001:db8:0:0:0:0:0:1")
        // Junk or nothing but trusted hops: the last trusted hop.
        #expect(SignInClient.address(peer: "127.0.0.1", forwardedFor: ["198.51.100.7, junk, 10.0.0.9"], trusted: trusted) == "10.0.0.9")
        #expect(SignInClient.address(peer: "127.0.0.1", forwardedFor: [], trusted: trusted) == "127.0.0.1")
    }
}
