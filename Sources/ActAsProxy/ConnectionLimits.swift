import ActAsConfig
import ActAsCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The error a refused connection's initializer fails with: the server bootstrap then closes
/// the accepted socket at once.
struct ConnectionRefused: Error {}

/// The process's descriptor limit, read and raised, and what it leaves for client connections
/// (ConnectionBudget).
public enum DescriptorBudget {
    /// The soft `RLIMIT_NOFILE`, or nil when it cannot be read or is unlimited.
    static func descriptorLimit() -> Int? {
        var limit = rlimit()
        // rlim_t.max is RLIM_INFINITY (which Swift cannot import).
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: limit.rlim_cur)
    }

    /// The client connections the running process may admit under `config`.
    static func effectiveMaxConnections(_ config: ActAsConfig) -> Int {
        guard let descriptors = descriptorLimit() else { return config.limits.maxConnections }
        return ConnectionBudget.clientConnections(
            configured: config.limits.maxConnections, descriptorLimit: descriptors, upstreamConnections: config.upstream.maxConnections)
    }

    /// At start: raises the soft descriptor limit to the hard one (the soft default, often 1024,
    /// is far below a proxy's needs), and returns a warning when `limits.max_connections` is still
    /// more than the descriptors allow.
    public static func prepare(_ config: ActAsConfig) -> String? {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
        }
        guard let descriptors = descriptorLimit() else { return nil }
        let allowed = effectiveMaxConnections(config)
        guard allowed < config.limits.maxConnections else { return nil }
        return "limits.max_connections = \(config.limits.maxConnections) needs more file descriptors than this process may open "
            + "(\(descriptors), with \(config.upstream.maxConnections) upstream connections and \(ConnectionBudget.reserved) kept in reserve): "
            + "at most \(allowed) client connections are admitted. Raise the limit (ulimit -n, LimitNOFILE=) to admit more."
    }
}

/// Closes a connection when `IdleStateHandler` says it has been silent too long.
final class CloseWhenIdle: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
