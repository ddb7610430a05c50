import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsHTTP
import ActAsPages
import ActAsSessions
import ActAsStore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// What the request path shares across event loops besides settings: the live state (via the
/// identity forwarding) and the console.
public struct ProxyServices: Sendable {
    let identity: IdentityForwarding
    let console: any ConsoleEndpoint
    let audit: AuditLog
    /// SPEC §10.2: `/readyz` and `store.grace` follow it.
    let storeHealth: StoreHealth
    /// Where a client certificate's sign-in is written (SPEC §10.3 mTLS); nil: no mTLS sign-in.
    let directory: Directory?

    public init(live: LiveState, console: any ConsoleEndpoint, audit: AuditLog, storeHealth: StoreHealth = StoreHealth(),
                directory: Directory? = nil) {
        self.identity = IdentityForwarding(live: live)
        self.console = console
        self.audit = audit
        self.storeHealth = storeHealth
        self.directory = directory
    }
}

/// The listeners (https, optional http → https redirect, admin) and the per-loop data path
/// state. Reload swaps the TLS context and settings for new connections and requests without
/// touching open connections; drain stops accepting and lets exchanges finish.
public final class ProxyServer: Sendable {
    private struct Mutable {
        var config: ActAsConfig
        var tlsContext: NIOSSLContext
        var channels: [any Channel] = []
        var adminChannel: (any Channel)?
        var draining = false
        /// Until `markReady()`: `/readyz` is 503 while the process still records itself in the
        /// store (a CLI change made before then could not reach it, SPEC §10.1).
        var ready = false
    }

    private let group: any EventLoopGroup
    private let loops: [ObjectIdentifier: NIOLoopBound<LoopContext>]
    private let state: NIOLockedValueBox<Mutable>
    private let changeFeed = NIOLockedValueBox<ChangeFeedTarget?>(nil)
    public let metrics: ProxyMetrics
    /// The console (policy, sign-in) and the request log, which a reload updates as well.
    private let services: ProxyServices
    /// `limits.max_connections` (capped by the file descriptors), for https and http together.
    private let gate: ConnectionGate
    /// Sessions signed in by client certificates, reused by their later connections.
    private let certificateSessions = CertificateSessions()

    public init(config: ActAsConfig, group: any EventLoopGroup, metrics: ProxyMetrics, services: ProxyServices) throws {
        self.group = group
        self.metrics = metrics
        self.services = services
        self.gate = ConnectionGate(limit: DescriptorBudget.effectiveMaxConnections(config))
        let context = try TLSSetup.makeServerContext(config)
        self.state = NIOLockedValueBox(Mutable(config: config, tlsContext: context))
        let settings = ProxySettings(config: config)
        let eventLoops = Array(group.makeIterator())
        let share = Self.poolShare(config.upstream.maxConnections, loops: eventLoops.count)
        var loops: [ObjectIdentifier: NIOLoopBound<LoopContext>] = [:]
        for eventLoop in eventLoops {
            // LoopContext must be created on its loop to be bound to it.
            let bound = try eventLoop.submit {
                let context = LoopContext(eventLoop: eventLoop, settings: settings, poolShare: share, metrics: metrics, services: services)
                context.start()
                return NIOLoopBound(context, eventLoop: eventLoop)
            }.wait()
            loops[ObjectIdentifier(eventLoop)] = bound
        }
        self.loops = loops
    }

    /// SPEC §10.3: client certificates sign people in when `"mtls"` is in `auth.methods`.
    static func clientCertificateSettings(_ config: ActAsConfig, directory: Directory, sessions: CertificateSessions) -> ClientCertificateHandler.Settings? {
        guard config.listen.clientCA != nil, let mtls = config.auth.mtls,
              let rule = ClientCertificateIdentity.Rule(rawValue: mtls.usernameFrom) else { return nil }
        return .init(directory: directory, sessions: sessions, rule: rule, sessionTTL: config.auth.sessionTTL.seconds)
    }

    /// `max_connections` split across event loops (each loop owns its own pool).
    static func poolShare(_ total: Int, loops: Int) -> Int {
        max(1, (total + loops - 1) / max(loops, 1))
    }

    public var httpsAddress: SocketAddress? {
        state.withLockedValue { $0.channels.first?.localAddress }
    }

    public var adminAddress: SocketAddress? {
        state.withLockedValue { $0.adminChannel?.localAddress }
    }

    public var isDraining: Bool { state.withLockedValue { $0.draining } }

    /// The process is wholly up (recorded in the store): `/readyz` may answer 200.
    public func markReady() { state.withLockedValue { $0.ready = true } }

    // MARK: start

    public func start() async throws {
        let config = state.withLockedValue { $0.config }
        let https = try await bindHTTPS(config.listen.https)
        var channels: [any Channel] = [https]
        if let http = config.listen.http {
            channels.append(try await bindRedirect(http, httpsPort: config.listen.https.port))
        }
        var admin: (any Channel)?
        if let address = config.listen.admin {
            admin = try await bindAdmin(address)
        }
        state.withLockedValue {
            $0.channels = channels
            $0.adminChannel = admin
        }
    }

    private func bindHTTPS(_ address: SocketAddressSpec) async throws -> any Channel {
        let loops = self.loops
        let state = self.state
        let gate = self.gate
        let metrics = self.metrics
        let directory = services.directory
        let certificateSessions = self.certificateSessions
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 128 * 1024))
            .childChannelInitializer { channel in
                // SPEC §9: beyond max_connections, closed right after accept (no TLS state made).
                guard gate.admit() else {
                    metrics.refusedConnections.increment()
                    return channel.eventLoop.makeFailedFuture(ConnectionRefused())
                }
                channel.closeFuture.whenComplete { _ in gate.release() }
                let (tlsContext, certificates) = state.withLockedValue { state in
                    (state.tlsContext, directory.flatMap {
                        Self.clientCertificateSettings(state.config, directory: $0, sessions: certificateSessions)
                    })
                }
                return channel.eventLoop.makeCompletedFuture {
                    guard let loop = loops[ObjectIdentifier(channel.eventLoop)]?.value else {
                        throw ChannelError.ioOnClosedChannel
                    }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: tlsContext))
                    if let certificates { try sync.addHandler(ClientCertificateHandler(loop: loop, settings: certificates)) }
                    try sync.addHandler(DownstreamHandler(loop: loop))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    private func bindRedirect(_ address: SocketAddressSpec, httpsPort: Int) async throws -> any Channel {
        let state = self.state
        let gate = self.gate
        let metrics = self.metrics
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                // Plain-http clients count against max_connections too, and a silent one is
                // closed after header_timeout (nothing else would ever close it).
                guard gate.admit() else {
                    metrics.refusedConnections.increment()
                    return channel.eventLoop.makeFailedFuture(ConnectionRefused())
                }
                channel.closeFuture.whenComplete { _ in gate.release() }
                let timeout = state.withLockedValue { $0.config.limits.headerTimeout.milliseconds }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: .milliseconds(timeout)))
                    try sync.addHandler(SmallHTTPHandler { head in
                        Self.redirect(head, httpsPort: httpsPort)
                    })
                    try sync.addHandler(CloseWhenIdle())
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    /// `308` to the same host and path on https (308 keeps the method and body semantics).
    static func redirect(_ head: RequestHead, httpsPort: Int) -> SmallHTTPHandler.Response {
        guard let host = head.host, head.target.hasPrefix("/") else {
            return .init(status: 400, reason: "Bad Request", contentType: "text/plain", body: "a Host header and an origin-form target are required\n", close: true)
        }
        var name = host
        if host.hasPrefix("[") {
            name = String(host.prefix { $0 != "]" }) + "]"
        } else if let colon = host.firstIndex(of: ":") {
            name = String(host[..<colon])
        }
        let location = "https://\(name)\(httpsPort == 443 ? "" : ":\(httpsPort)")\(head.target)"
        return .init(status: 308, reason: "Permanent Redirect", contentType: "text/plain", body: "see \(location)\n",
                     headers: "Location: \(location)\r\n", close: true)
    }

    /// The change feed `POST /sync` catches up (SPEC §10.1), and this instance's id.
    public func serveSync(_ sync: StateSync, instanceID: String) {
        changeFeed.withLockedValue { $0 = ChangeFeedTarget(sync: sync, instanceID: instanceID) }
    }

    private func bindAdmin(_ address: SocketAddressSpec) async throws -> any Channel {
        let metrics = self.metrics
        let state = self.state
        let changeFeed = self.changeFeed
        let storeHealth = services.storeHealth
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SmallHTTPHandler(reply: { head, loop in
                        if head.target == "/sync" || head.target.hasPrefix("/sync?") {
                            return AdminSync.reply(head, target: changeFeed.withLockedValue { $0 }, on: loop)
                        }
                        let (draining, ready) = state.withLockedValue { ($0.draining, $0.ready) }
                        return .now(Self.admin(head, metrics: metrics, draining: draining, ready: ready,
                                               storeReachable: storeHealth.isReachable))
                    }))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    static func admin(_ head: RequestHead, metrics: ProxyMetrics, draining: Bool, ready: Bool = true, storeReachable: Bool = true) -> SmallHTTPHandler.Response {
        guard head.method == .get || head.method == .head else {
            return .init(status: 405, reason: "Method Not Allowed", contentType: "text/plain", body: "GET only\n", headers: "Allow: GET, HEAD\r\n")
        }
        let path = head.target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        switch path {
        case "/healthz":
            return .init(status: 200, reason: "OK", contentType: "text/plain", body: "ok\n")
        case "/readyz":
            return draining
                ? .init(status: 503, reason: "Service Unavailable", contentType: "text/plain", body: "draining\n")
                : !ready
                ? .init(status: 503, reason: "Service Unavailable", contentType: "text/plain", body: "starting\n")
                : !storeReachable
                ? .init(status: 503, reason: "Service Unavailable", contentType: "text/plain", body: "store unavailable\n")
                : .init(status: 200, reason: "OK", contentType: "text/plain", body: "ready\n")
        case "/metrics":
            return .init(status: 200, reason: "OK", contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render())
        default:
            return .init(status: 404, reason: "Not Found", contentType: "text/plain", body: "not found; try /healthz, /readyz, /metrics\n")
        }
    }

    // MARK: reload

    /// Applies a new configuration to new connections and requests. Throws (and keeps the
    /// running configuration) when the new TLS material cannot be loaded.
    public func reload(_ config: ActAsConfig) throws -> [String] {
        let context = try TLSSetup.makeServerContext(config)
        var notes: [String] = []
        let old = state.withLockedValue { state -> ActAsConfig in
            let old = state.config
            state.config = config
            state.tlsContext = context
            return old
        }
        for key in Self.restartKeys where old.values[key] != config.values[key] {
            notes.append("\(key) changed; it takes effect at the next restart")
        }
        // The request log's redactor and rotation size first: the loops below take the
        // writer's new encoder with their settings.
        services.audit.writer.update(redactor: AuditSettings.redactor(config.audit), maxFileSize: config.audit.maxFileSize)
        // [auth], [roles], [impersonation]: from here on, and running sessions the new policy
        // ends or shortens are ended or shortened before any more is forwarded.
        let outcome = services.console.apply(config: config, now: Date())
        if outcome.ended > 0 || outcome.shortened > 0 {
            notes.append("the new policy ended \(outcome.ended) and shortened \(outcome.shortened) running impersonation session(s)")
        }
        let settings = ProxySettings(config: config)
        let share = Self.poolShare(config.upstream.maxConnections, loops: loops.count)
        for bound in loops.values {
            bound.eventLoop.execute { bound.value.apply(settings: settings, poolShare: share) }
        }
        gate.update(limit: DescriptorBudget.effectiveMaxConnections(config))
        return notes
    }

    /// What a reload does not change (README, "Signals"): the sockets, the thread count, the
    /// store, the request log's file and the demo app are set up once at start.
    static let restartKeys = [
        "listen.https", "listen.http", "listen.admin", "listen.threads", "listen.instance_id",
        "store.url", "audit.file", "demo.enabled",
    ]

    // MARK: drain

    /// Stops accepting, lets in-flight exchanges finish (up to `limits.drain_timeout`), then
    /// closes what is left. `/readyz` answers 503 from the first moment.
    public func drain() async {
        let (channels, timeout) = state.withLockedValue { state -> ([any Channel], TimeAmount) in
            state.draining = true
            return (state.channels, .milliseconds(state.config.limits.drainTimeout.milliseconds))
        }
        for channel in channels { try? await channel.close() }
        for bound in loops.values {
            try? await bound.eventLoop.submit { bound.value.beginDrain() }.get()
        }
        let deadline = NIODeadline.now() + timeout
        while NIODeadline.now() < deadline {
            var open = 0
            for bound in loops.values {
                open += (try? await bound.eventLoop.submit { bound.value.connectionCount }.get()) ?? 0
            }
            if open == 0 { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        for bound in loops.values {
            try? await bound.eventLoop.submit {
                bound.value.closeAll()
                bound.value.stop()
            }.get()
        }
        let admin = state.withLockedValue { $0.adminChannel }
        try? await admin?.close()
    }
}
