import Synchronization

/// SPEC §3, §9: client connections beyond `limits.max_connections` are refused at accept. One
/// count for every client listener and event loop; a connection takes its place in the channel
/// initializer (before any handler or TLS state exists for it) and gives it back when it closes.
public final class ConnectionGate: Sendable {
    private let open = Atomic<Int>(0)
    private let limit: Atomic<Int>

    public init(limit: Int) {
        self.limit = Atomic(max(1, limit))
    }

    /// A reload may change `limits.max_connections`; open connections are not closed for it.
    public func update(limit: Int) {
        self.limit.store(max(1, limit), ordering: .relaxed)
    }

    public var current: Int { open.load(ordering: .relaxed) }
    public var maximum: Int { limit.load(ordering: .relaxed) }

    /// Takes a place for a new connection; false when all are taken (then nothing is held).
    public func admit() -> Bool {
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        guard now <= limit.load(ordering: .relaxed) else {
            open.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    public func release() {
        open.wrappingSubtract(1, ordering: .relaxed)
    }
}

/// How many client connections fit in the process's file descriptors. A flood must run into
/// `limits.max_connections`, never into the descriptor limit: there accept fails for every
/// listener (the admin one included), and so do upstream connects and the store.
public enum ConnectionBudget {
    /// Descriptors kept for everything that is not a client or upstream connection: listeners,
    /// event loops, the store, the request log, admin and redirect connections, certificates
    /// read at reload. A running proxy uses about 30.
    public static let reserved = 64

    /// The most client connections the descriptor limit allows: each client connection may hold
    /// one upstream connection (up to `upstream.max_connections` in all), plus `reserved`.
    public static func clientConnections(configured: Int, descriptorLimit: Int, upstreamConnections: Int) -> Int {
        let available = descriptorLimit - reserved
        // clients + min(clients, upstream) ≤ available
        let allowed = available >= 2 * upstreamConnections ? available - upstreamConnections : available / 2
        return max(1, min(configured, allowed))
    }
}
