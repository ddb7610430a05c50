import Logging
import PostgresNIO
import Synchronization

/// The connection pool, replaced by a fresh one when the database comes back after an outage.
/// postgres-nio's pool spaces its connection attempts 100 ms × 1.25^n apart, up to a minute:
/// after a minute down it tries again only every 15 s or so, and the instance would stay
/// unavailable that long after the database is back. So while statements fail as unreachable,
/// a direct connection is tried every `probeInterval`; when one that first failed succeeds,
/// the database is back, and a new pool (no backoff) takes over from the old one.
final class RenewingPool: Sendable {
    private struct Current: Sendable {
        var client: PostgresClient
        var running: Task<Void, Never>
        var generation: Int
    }

    private let current: Mutex<Current>
    private let probing = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)
    private let configuration: PostgresClient.Configuration
    private let probeConfiguration: PostgresConnection.Configuration
    private let logger: Logger
    let probeInterval: Duration

    init(configuration: PostgresClient.Configuration, probeConfiguration: PostgresConnection.Configuration,
         logger: Logger, probeInterval: Duration = .milliseconds(500)) {
        self.configuration = configuration
        self.probeConfiguration = probeConfiguration
        self.logger = logger
        self.probeInterval = probeInterval
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        current = Mutex(Current(client: client, running: Task { await client.run() }, generation: 1))
    }

    var client: PostgresClient { current.withLock { $0.client } }

    /// A statement failed as unreachable: watch for the database's return (one watcher at a time).
    func unreachable() {
        guard !closed.load(ordering: .relaxed), !probing.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Task { await watch() }
    }

    private func watch() async {
        defer { probing.store(false, ordering: .releasing) }
        var sawItDown = false
        while !closed.load(ordering: .relaxed) {
            do {
                let connection = try await PostgresConnection.connect(configuration: probeConfiguration, id: 0, logger: logger)
                try? await connection.close()
                // Reachable at the first try: the failure was something else (a slow statement);
                // the pool's connections are fine and stay.
                if sawItDown { renew() }
                return
            } catch {
                sawItDown = true
            }
            try? await Task.sleep(for: probeInterval)
        }
    }

    /// A new pool for new statements; the old one is shut down (statements still waiting in it
    /// for a connection fail, as they would have until its next attempt).
    private func renew() {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let running = Task { await client.run() }
        let (old, generation) = current.withLock { state in
            let old = state.running
            state = Current(client: client, running: running, generation: state.generation + 1)
            return (old, state.generation)
        }
        old.cancel()
        logger.notice("store reachable again: new connection pool", metadata: ["pool_generation": "\(generation)"])
        if closed.load(ordering: .relaxed) { running.cancel() }
    }

    func close() async {
        closed.store(true, ordering: .relaxed)
        let running = current.withLock { $0.running }
        running.cancel()
        await running.value
    }
}
