import NIOCore
import NIOPosix

/// What an upstream connection reports to the exchange using it.
protocol UpstreamOwner: AnyObject {
    func upstreamRead(_ buffer: ByteBuffer)
    func upstreamReadComplete()
    func upstreamClosed()
    func upstreamWritabilityChanged(_ writable: Bool)
}

/// One keep-alive connection to the upstream. Confined to its event loop.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    weak var owner: (any UpstreamOwner)?
    /// Exchanges served so far; > 0 means "reused" (a failure may be a stale keep-alive).
    var uses = 0
    var isClosed = false
    var idleSince = NIODeadline.now()

    init(channel: any Channel, handler: UpstreamHandler) {
        self.channel = channel
        self.handler = handler
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        owner = nil
        channel.close(promise: nil)
    }
}

/// Thin inbound handler: passes bytes to the exchange that owns the connection, or, while the
/// connection sits idle in the pool, treats anything arriving as a reason to discard it.
/// Intercepts `read` so the exchange can stop reading when the client is slow.
final class UpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Set once the connect completes; cleared when the channel closes (breaks the cycle).
    var connection: UpstreamConnection?
    /// Pools live as long as their event loop.
    unowned(unsafe) let pool: UpstreamPool
    private var paused = false
    private var readPending = false
    private var context: ChannelHandlerContext?

    init(pool: UpstreamPool) {
        self.pool = pool
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        let buffer = unwrapInboundIn(data)
        if let owner = connection.owner {
            owner.upstreamRead(buffer)
        } else {
            // Bytes on an idle connection: the upstream is confused; never reuse it.
            pool.discard(connection)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.owner?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard let connection else { return }
        self.connection = nil
        let owner = connection.owner
        connection.owner = nil
        connection.isClosed = true
        pool.connectionClosed(connection)
        owner?.upstreamClosed()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.owner?.upstreamWritabilityChanged(context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Backpressure from the client side: stop or resume reading the upstream.
    func setPaused(_ pause: Bool) {
        guard pause != paused else { return }
        paused = pause
        if !pause, readPending, let context {
            readPending = false
            context.read()
        }
    }
}

/// Per-event-loop pool of keep-alive connections to the upstream. No locks: every connection,
/// waiter and counter belongs to one event loop, as do the exchanges that use them.
final class UpstreamPool {
    typealias Callback = (Result<UpstreamConnection, any Error>) -> Void

    let eventLoop: any EventLoop
    private(set) var settings: ProxySettings
    private var address: SocketAddress?
    private var idle: [UpstreamConnection] = []
    /// Open plus connecting.
    private(set) var total = 0
    private var maxConnections: Int
    private var waiters = CircularBuffer<(id: UInt64, callback: Callback)>()
    private var nextWaiterID: UInt64 = 0
    private let metrics: ProxyMetrics

    /// An idle connection older than this is closed: upstreams time out idle keep-alives
    /// themselves (often after 5–75 s), and a reused connection closing under us costs a retry.
    static let maxIdle: TimeAmount = .seconds(30)

    init(eventLoop: any EventLoop, settings: ProxySettings, share: Int, metrics: ProxyMetrics) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.maxConnections = share
        self.metrics = metrics
    }

    func update(settings: ProxySettings, share: Int) {
        if settings.upstreamHost != self.settings.upstreamHost || settings.upstreamPort != self.settings.upstreamPort {
            address = nil
            for connection in idle { connection.close() }
            idle.removeAll()
        }
        self.settings = settings
        self.maxConnections = share
    }

    /// Gets a connection: the most recently used idle one (warm), a new one, or a place in
    /// the queue. Returns a waiter id that `cancel` accepts, or nil when served at once.
    @discardableResult
    func acquire(_ callback: @escaping Callback) -> UInt64? {
        while let connection = idle.popLast() {
            if connection.isClosed { continue }
            callback(.success(connection))
            return nil
        }
        if total < maxConnections {
            connect(callback)
            return nil
        }
        nextWaiterID += 1
        waiters.append((nextWaiterID, callback))
        return nextWaiterID
    }

    func cancel(waiter id: UInt64) {
        if let index = waiters.firstIndex(where: { $0.id == id }) {
            waiters.remove(at: index)
        }
    }

    /// Returns a healthy connection after a complete exchange.
    func release(_ connection: UpstreamConnection) {
        connection.owner = nil
        connection.uses += 1
        connection.handler.setPaused(false)
        guard !connection.isClosed else { return }
        if let waiter = waiters.popFirst() {
            waiter.callback(.success(connection))
            return
        }
        connection.idleSince = .now()
        idle.append(connection)
    }

    /// Closes a connection that must not be reused.
    func discard(_ connection: UpstreamConnection) {
        connection.close()
    }

    func connectionClosed(_ connection: UpstreamConnection) {
        if let index = idle.firstIndex(where: { $0 === connection }) {
            idle.remove(at: index)
        }
        total -= 1
        metrics.upstreamConnections.decrement()
        // A slot opened: start a connection for the first waiter.
        if let waiter = waiters.popFirst() {
            connect(waiter.callback)
        }
    }

    func sweep(now: NIODeadline) {
        while let oldest = idle.first, oldest.idleSince + Self.maxIdle < now {
            idle.removeFirst()
            oldest.close()
        }
    }

    func closeAll() {
        for connection in idle { connection.close() }
        idle.removeAll()
        while let waiter = waiters.popFirst() {
            waiter.callback(.failure(ChannelError.ioOnClosedChannel))
        }
    }

    private func resolvedAddress() throws -> SocketAddress {
        if let address { return address }
        let resolved = try SocketAddress.makeAddressResolvingHost(settings.upstreamHost, port: settings.upstreamPort)
        address = resolved
        return resolved
    }

    private func connect(_ callback: @escaping Callback) {
        total += 1
        metrics.upstreamConnections.increment()
        let target: SocketAddress
        do {
            target = try resolvedAddress()
        } catch {
            failConnect(error, callback)
            return
        }
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.maxMessagesPerRead, value: 4)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler(pool: pool.value))
                }
            }
            .connect(to: target)
            .assumeIsolated()
            .whenComplete { result in
                let pool = pool.value
                switch result {
                case .success(let channel):
                    let handler = try! channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                    let connection = UpstreamConnection(channel: channel, handler: handler)
                    handler.connection = connection
                    if !channel.isActive {
                        // Closed before we saw it; channelInactive already ran without a connection.
                        pool.failConnect(ChannelError.ioOnClosedChannel, callback)
                        return
                    }
                    callback(.success(connection))
                case .failure(let error):
                    pool.failConnect(error, callback)
                }
            }
    }

    private func failConnect(_ error: any Error, _ callback: Callback) {
        total -= 1
        metrics.upstreamConnections.decrement()
        address = nil
        callback(.failure(error))
    }
}
