import ActAsHTTP
import NIOCore
import NIOHTTP2

/// The connection side of HTTP/2 downstream (SPEC §10.4): after ALPN chose `h2`, NIOHTTP2's
/// handler (frames, HPACK, flow control, RFC 9113 §8.2 validation, the stream limit, and the
/// rapid-reset, CONTINUATION and glitch limits that end a hostile connection with GOAWAY) and a
/// stream per request, each running HTTP2StreamBridge and its own DownstreamHandler.
enum HTTP2Connection {
    /// NIOHTTP2's settings for these limits. The header list limit leaves room above
    /// `max_header_bytes`, so a head just over it reaches the codec and gets 431 as on
    /// HTTP/1.1; far beyond it the connection ends.
    static func configuration(_ limits: HTTPLimits, maxConcurrentStreams: Int) -> NIOHTTP2Handler.Configuration {
        var configuration = NIOHTTP2Handler.Configuration()
        configuration.connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: max(2 * limits.maxHeaderBytes, 16 * 1024)),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
        ]
        configuration.connection.targetWindowSize = 4 * streamWindow
        configuration.stream.targetWindowSize = streamWindow
        // The stream channel turns unwritable past these: the DownstreamHandler then pauses
        // the upstream's reads, as it does for a slow HTTP/1.1 client.
        configuration.stream.outboundBufferSizeHighWatermark = 128 * 1024
        configuration.stream.outboundBufferSizeLowWatermark = 32 * 1024
        return configuration
    }

    /// Per-stream receive window: uploads of a browser get going without waiting on updates.
    static let streamWindow = 256 * 1024

    /// A client certificate of a listener with mTLS sign-in, and how it signs in.
    struct StreamCertificate: Sendable {
        var settings: ClientCertificateHandler.Settings
        var der: [UInt8]
    }

    /// Replaces the HTTP/1.1 handler of a connection whose handshake chose `h2`.
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, loop: LoopContext, certificate: StreamCertificate? = nil) throws {
        let settings = loop.settings
        let bound = NIOLoopBound(loop, eventLoop: loop.eventLoop)
        let limits = settings.limits
        let maxStreams = settings.h2MaxConcurrentStreams
        let lifecycle = HTTP2ConnectionLifecycle(loop: loop)
        let connection = NIOLoopBound(lifecycle, eventLoop: loop.eventLoop)
        let configuration = configuration(limits, maxConcurrentStreams: enforcedByNIOHTTP2(maxStreams))
        try pipeline.addHandler(HTTP2OutboundFrames(advertisedMaxConcurrentStreams: maxStreams))
        try pipeline.addHandler(HTTP2FlushCoalescer())
        _ = try pipeline.configureHTTP2Pipeline(
            mode: .server, connectionConfiguration: configuration.connection, streamConfiguration: configuration.stream
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                let sync = stream.pipeline.syncOperations
                // RFC 9113 §5.1.2: a stream past the advertised limit is a stream error.
                guard connection.value.openStreams < maxStreams else {
                    return try sync.addHandler(HTTP2RefusedStream())
                }
                connection.value.streamOpened(try? stream.syncOptions?.getOption(HTTP2StreamChannelOptions.streamID))
                try sync.addHandler(HTTP2StreamBridge(
                    limits: limits, sendTimeout: settings.idleTimeout, streamEnded: { connection.value.streamClosed() }))
                if let certificate {
                    try sync.addHandler(ClientCertificateHandler(loop: bound.value, settings: certificate.settings, streamCertificate: certificate.der))
                }
                try sync.addHandler(DownstreamHandler(loop: bound.value, proto: .h2))
            }
        }
        try pipeline.addHandler(lifecycle)
    }

    /// NIOHTTP2 treats a stream past its limit as a connection error, so it is given more room
    /// than is advertised; the streams in between get REFUSED_STREAM from HTTP2RefusedStream.
    static func enforcedByNIOHTTP2(_ advertised: Int) -> Int {
        advertised + max(advertised, 100)
    }
}

/// A stream beyond `h2_max_concurrent_streams`: RST_STREAM REFUSED_STREAM, nothing else.
final class HTTP2RefusedStream: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { refuse(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        refuse(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func refuse(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.rstStream(.refusedStream)), promise: nil)
        context.close(promise: nil)
    }
}

/// An HTTP/2 connection's lifetime on its loop: counted as an open connection, closed after
/// `idle_timeout` without a stream, and on drain told GOAWAY (no new streams) and closed once
/// its streams are done. The streams themselves are DownstreamHandlers on the same loop.
final class HTTP2ConnectionLifecycle: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame

    unowned let loop: LoopContext
    private var context: ChannelHandlerContext?
    /// Streams running a request (HTTP2Connection's own limit counts these).
    private(set) var openStreams = 0
    private var lastStreamID = HTTP2StreamID(0)
    private var idleSince: NIODeadline? = .now()
    /// Until the first stream: a connection that never sends a whole request head is held for
    /// `header_timeout`, as on HTTP/1.1 (where it gets 408).
    private var awaitingFirstStream = true
    private(set) var draining = false

    init(loop: LoopContext) {
        self.loop = loop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop.register(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        loop.unregister(self)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        loop.unregister(self)
        context.fireChannelInactive()
    }

    func streamOpened(_ id: HTTP2StreamID?) {
        openStreams += 1
        awaitingFirstStream = false
        if let id { lastStreamID = max(lastStreamID, id) }
        idleSince = nil
    }

    func streamClosed() {
        openStreams = max(0, openStreams - 1)
        guard openStreams == 0 else { return }
        idleSince = .now()
        if draining { goAwayAndClose() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // NIOHTTP2 reports stream errors here after its RST_STREAM: the connection goes on.
        // After a connection error it wrote GOAWAY, and HTTP2OutboundFrames closes it.
    }

    /// Called by the loop's sweep.
    func checkTimers(now: NIODeadline, settings: ProxySettings) {
        guard let idleSince else { return }
        if now - idleSince > (awaitingFirstStream ? settings.headerTimeout : settings.idleTimeout) { goAwayAndClose() }
    }

    /// SIGTERM: no new streams; the open ones finish (their handlers drain too).
    func drain() {
        draining = true
        guard let context else { return }
        if openStreams == 0 { return goAwayAndClose() }
        context.writeAndFlush(wrapOutboundFrame(.goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil)), promise: nil)
    }

    func forceClose() {
        context?.close(promise: nil)
    }

    private func goAwayAndClose() {
        guard let context, context.channel.isActive else { return }
        idleSince = nil
        context.writeAndFlush(wrapOutboundFrame(.goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil)))
            .assumeIsolated().whenComplete { [weak self] _ in self?.context?.close(promise: nil) }
    }

    private func wrapOutboundFrame(_ payload: HTTP2Frame.FramePayload) -> NIOAny {
        NIOAny(HTTP2Frame(streamID: .rootStream, payload: payload))
    }
}

/// Between TLS and NIOHTTP2 on an h2 connection: one flush per event-loop tick instead of one per
/// stream event. Each stream's response end, and each `read()` on a stream (which sends its
/// WINDOW_UPDATE), flushes the connection; with many streams answered from different upstream
/// connections in one tick that was a TLS record and a `write` each.
final class HTTP2FlushCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = Any

    private var scheduled = false

    func flush(context: ChannelHandlerContext) {
        guard !scheduled else { return }
        scheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.scheduled = false
            context.flush()
        }
    }
}
