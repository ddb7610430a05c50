import Testing
@testable import ActAsCore

@Suite struct ConnectionBudgetTests {
    @Test func configuredLimitStandsWhenDescriptorsSuffice() {
        #expect(ConnectionBudget.clientConnections(configured: 10_000, descriptorLimit: 1_048_576, upstreamConnections: 256) == 10_000)
    }

    /// Every client may hold an upstream connection too; the reserve is never handed out.
    @Test(arguments: [
        (20_000, 256, 20_000 - 64 - 256),
        (256, 16, 256 - 64 - 16),
        (1_024, 512, (1_024 - 64) / 2),
        (256, 256, (256 - 64) / 2),
    ])
    func descriptorsCapTheConnections(limit: Int, upstream: Int, expected: Int) {
        let allowed = ConnectionBudget.clientConnections(configured: 100_000, descriptorLimit: limit, upstreamConnections: upstream)
        #expect(allowed == expected)
        #expect(allowed + min(allowed, upstream) + ConnectionBudget.reserved <= limit)
    }

    @Test func neverBelowOne() {
        #expect(ConnectionBudget.clientConnections(configured: 100, descriptorLimit: 10, upstreamConnections: 256) == 1)
        #expect(ConnectionBudget.clientConnections(configured: 0, descriptorLimit: 1_000, upstreamConnections: 1) == 1)
    }

    @Test func gateAdmitsUpToItsLimitAndTakesPlacesBack() {
        let gate = ConnectionGate(limit: 3)
        #expect((0..<5).map { _ in gate.admit() } == [true, true, true, false, false])
        #expect(gate.current == 3, "a refusal holds no place")
        gate.release()
        #expect(gate.admit())
        #expect(!gate.admit())
        gate.update(limit: 5)
        #expect(gate.admit() && gate.admit())
        #expect(!gate.admit())
        gate.update(limit: 1)
        #expect(!gate.admit(), "lowering the limit closes nothing but admits no one until below it")
        #expect(gate.current == 5)
    }
}
