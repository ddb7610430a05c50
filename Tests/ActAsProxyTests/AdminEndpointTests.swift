import Testing
@testable import ActAsProxy

/// The admin listener's `/readyz` (SPEC §3, §10.1, §10.2): ready only when wholly up.
@Suite("Admin endpoints")
struct AdminEndpointTests {
    func readyz(draining: Bool = false, ready: Bool = true, storeReachable: Bool = true) throws -> (Int, String) {
        let answer = ProxyServer.admin(try head("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"), metrics: ProxyMetrics(),
                                       draining: draining, ready: ready, storeReachable: storeReachable)
        return (answer.status, answer.body)
    }

    @Test func readyOnlyOnceRecordedInTheStore() throws {
        #expect(try readyz() == (200, "ready\n"))
        // Before the instance is in the store, a CLI change could not reach it: not ready yet.
        #expect(try readyz(ready: false) == (503, "starting\n"))
    }

    @Test func drainingAndAnUnreachableStoreAreNotReady() throws {
        #expect(try readyz(draining: true) == (503, "draining\n"))
        #expect(try readyz(storeReachable: false) == (503, "store unavailable\n"))
        #expect(try readyz(draining: true, ready: false) == (503, "draining\n"))
    }
}
