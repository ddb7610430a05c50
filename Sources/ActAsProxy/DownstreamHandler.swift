import ActAsAudit
import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsHTTP
import ActAsPages
import ActAsSessions
import ActAsStore
import Foundation
import NIOCore
import NIOSSL
import NIOTLS

/// One client connection: parses requests with the strict codec, forwards each to a pooled
/// upstream connection, streams bodies both ways with backpressure and writes responses back
/// in order. One exchange at a time; pipelined requests wait, unparsed, in `inbound`.
///
/// Backpressure works by holding back `read()` (this handler intercepts it) rather than by
/// toggling autoRead, which allocates on every change.
final class DownstreamHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State {
        case awaitingHead
        case exchange
        /// A console request (`/.actas/…`): reading its body, then waiting for the console.
        case console
        case tunnel
        case closed
    }

    enum RequestBody {
        case none
        case contentLength(remaining: Int64)
        case chunked(ChunkedDecoder)
        case done
    }

    enum ResponseBody {
        case awaitingHead
        case contentLength(remaining: Int64)
        case chunked(ChunkedDecoder)
        case untilClose
        case done
    }

    /// Buffer at most this much of a request body before an upstream connection is ready.
    static let maxBufferedRequestBytes = 64 * 1024
    /// Body slices up to this size are copied into the pending write (one TLS record for a
    /// head and a small body); larger ones are written as they are.
    static let coalesceLimit = 8 * 1024

    unowned let loop: LoopContext
    /// HTTP/1.1 on its own connection, or one HTTP/2 stream behind an HTTP2StreamBridge.
    let proto: ClientProtocol
    var context: ChannelHandlerContext!
    var settings: ProxySettings
    var parser: HeadParser
    var inbound = ByteBuffer()
    var state = State.awaitingHead

    var clientAddress: [UInt8] = []
    /// The same as text, for the request log (once per connection).
    var clientIPText = "unknown"
    var peerIsTrustedProxy = false

    var readPending = false
    var tlsHandshakeDone = false

    // Timers (checked by the loop's sweep).
    var headStartedAt: NIODeadline?
    var idleSince: NIODeadline?
    var upstreamDeadline: NIODeadline?
    var lastClientActivity = NIODeadline.now()
    /// While a chunked body is buffered before an upstream connection is taken (exchange id).
    var bodyLookahead: (exchange: UInt64, scan: ChunkedLookahead)?
    /// A slot of the loop's cap on streaming uploads (StreamingBodySlots): waited for or held.
    var streamingSlot = StreamingSlotState.none

    // The current exchange.
    var exchangeID: UInt64 = 0
    var inFlight = false
    /// Everything about the current request and its answer, made whole per request.
    var exchange = Exchange(requestID: RequestID(high: 0, low: 0), start: .now())
    var upstream: UpstreamConnection?
    var waiterID: UInt64?
    var responseParser: HeadParser
    var upstreamInbound = ByteBuffer()
    var responseBody = ResponseBody.done
    var downstreamFraming = HeaderRewriter.DownstreamFraming.none
    var upstreamBytesSeen = false

    var pendingOut = ByteBuffer()
    let crlf: ByteBuffer

    // Identity of the last request on this connection (see IdentityMemo).
    var identityMemo: IdentityMemo?
    /// The session whose in-flight count this exchange holds (see SessionActivity).
    var countedSessionID: String?

    /// The exchange's response is held back until its log record is on disk (impersonated
    /// requests, SPEC §8).
    var auditHeld = false

    /// Active while an HTML response is being rewritten.
    var pageRewriter: PageRewriter?
    var rewriteOutput: [ByteBuffer] = []

    // The console request being read or answered.
    var consoleHead: ConsoleHead?
    var consoleBody: [UInt8] = []
    var consoleBodyComplete = false
    /// Console requests are forms and small JSON documents.
    static let maxConsoleBody = 1 << 20

    struct ConsoleHead {
        var method: String
        var path: String
        var query: String
        var headers: [(name: String, value: String)]
        var principal: LiveState.Principal?
        var authentication: ConsoleRequest.Authentication
    }

    init(loop: LoopContext, proto: ClientProtocol = .http1) {
        self.loop = loop
        self.proto = proto
        // A stream exists only on a connection whose handshake is done.
        self.tlsHandshakeDone = proto == .h2
        self.settings = loop.settings
        self.parser = HeadParser(kind: .request, limits: loop.settings.limits)
        self.responseParser = HeadParser(kind: .response, limits: Self.responseLimits(loop.settings.limits))
        var crlf = ByteBuffer()
        crlf.writeStaticString("\r\n")
        self.crlf = crlf
    }

    /// Upstream heads get the same size limits; their bodies are the upstream's business.
    static func responseLimits(_ limits: HTTPLimits) -> HTTPLimits {
        var copy = limits
        copy.maxBody = .max
        copy.maxHeaderBytes = max(limits.maxHeaderBytes, 64 * 1024)
        copy.maxHeaders = max(limits.maxHeaders, 200)
        return copy
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pendingOut = context.channel.allocator.buffer(capacity: 0)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds this handler: keeping it here leaked every connection (issue 21).
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        loop.register(self)
        headStartedAt = .now()
        if let address = context.channel.remoteAddress {
            clientIPText = address.ipAddress ?? "unknown"
            clientAddress = Array(clientIPText.utf8)
            if !settings.trustedProxies.isEmpty, let bytes = Self.addressBytes(address) {
                peerIsTrustedProxy = settings.trustedProxies.contains { $0.contains(bytes) }
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        releaseSessionActivity()
        if var log = exchange.log, inFlight {
            // The client left before the exchange completed: logged, with nginx's 499.
            exchange.log = nil
            log.fields.upstreamNanoseconds = log.upstreamStarted.map { (NIODeadline.now() - $0).nanoseconds }
            loop.log(log, requestID: exchange.requestID, clientIP: clientIPText, status: exchange.responseStatus == 0 ? 499 : exchange.responseStatus,
                     duration: (NIODeadline.now() - exchange.start).nanoseconds, detail: "the client closed the connection")
        }
        let wasExchange = state == .exchange || state == .tunnel || state == .console
        state = .closed
        loop.unregister(self)
        // The client left mid-exchange: the upstream connection is in an unknown state.
        abandonUpstream()
        if wasExchange, inFlight {
            inFlight = false
            loop.metrics.inFlight.decrement()
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = event {
            if negotiated == "h2" { return switchToHTTP2(context: context) }
            tlsHandshakeDone = true
            // The handshake had header_timeout; the first head gets its own.
            if state == .awaitingHead, inbound.readableBytes == 0 { headStartedAt = .now() }
        }
        if let dropped = event as? DroppedRequestTrailers {
            exchange.log?.addDetail(dropped.detail)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // (Not when the proxy itself cut the handshake: that is a timeout, counted as one.)
        if !tlsHandshakeDone, state != .closed, error is NIOSSLError || error is BoringSSLError {
            loop.metrics.tlsHandshakeFailures.increment()
        }
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        lastClientActivity = .now()
        switch state {
        case .tunnel:
            upstream?.channel.write(buffer, promise: nil)
            return
        case .closed:
            return
        case .awaitingHead, .exchange, .console:
            break
        }
        if inbound.readableBytes == 0 {
            inbound = buffer
        } else {
            var buffer = buffer
            inbound.writeBuffer(&buffer)
        }
        if state == .awaitingHead, headStartedAt == nil {
            headStartedAt = lastClientActivity
            idleSince = nil
        }
        processInbound()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if state == .tunnel {
            upstream?.channel.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // A slow client: stop reading the upstream until the client catches up.
        upstream?.handler.setPaused(!context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if wantsClientBytes {
            context.read()
        } else {
            readPending = true
        }
    }

    var wantsClientBytes: Bool {
        if auditHeld { return false }
        switch state {
        case .awaitingHead:
            return true
        case .exchange:
            switch exchange.requestBody {
            case .contentLength(let remaining):
                if let upstream { return upstream.channel.isWritable }
                // Buffering before an upstream connection: the body, up to the buffer's size.
                return Int64(inbound.readableBytes) < remaining && inbound.readableBytes < Self.maxBufferedRequestBytes
            case .chunked:
                if let upstream { return upstream.channel.isWritable }
                return !chunkedBodyBuffered && inbound.readableBytes < Self.maxBufferedRequestBytes
            case .none, .done:
                // Pipelined requests wait in the kernel until this response is done.
                return false
            }
        case .console:
            return !consoleBodyComplete && inbound.readableBytes < Self.maxBufferedRequestBytes
        case .tunnel:
            return upstream?.channel.isWritable ?? false
        case .closed:
            return false
        }
    }

    func resumeReadingIfNeeded() {
        if readPending, wantsClientBytes {
            readPending = false
            context.read()
        }
    }

    // MARK: requests

    func processInbound() {
        // A finished exchange waiting for its log record: the next request (or anything the
        // client sends) waits until the answer has gone out.
        while !auditHeld {
            switch state {
            case .awaitingHead:
                guard inbound.readableBytes > 0 else {
                    resumeReadingIfNeeded()
                    return
                }
                let length: Int?
                do {
                    length = try parser.parse(inbound)
                } catch {
                    reject(error)
                    return
                }
                guard let length else { return }
                let headBytes = inbound.readSlice(length: length)!
                let head: RequestHead
                do {
                    head = try parser.finishRequest(headBytes)
                } catch {
                    reject(error, head: headBytes)
                    return
                }
                parser.reset()
                headStartedAt = nil
                startExchange(head)
            case .exchange:
                forwardRequestBody()
                return
            case .console:
                readConsoleBody()
                return
            case .tunnel:
                if inbound.readableBytes > 0, let upstream {
                    upstream.channel.writeAndFlush(inbound, promise: nil)
                    inbound.clear()
                }
                return
            case .closed:
                return
            }
        }
    }

    /// A request the codec refused: answer and close (the framing can no longer be trusted).
    /// `head`: the complete head when it was whole (`inbound` has moved past it).
    func reject(_ error: HTTPParseError, head: ByteBuffer? = nil) {
        loop.metrics.rejectedRequests.increment()
        exchange = Exchange(requestID: loop.nextRequestID(), start: .now())
        exchange.log = loop.settings.logAllRequests ? ExchangeLog(refused: head ?? inbound, proto: proto) : nil  // SPEC §8: every request
        send(.malformedHead(error))
    }

    func startExchange(_ head: RequestHead) {
        exchangeID &+= 1
        inFlight = true
        loop.metrics.inFlight.increment()
        settings = loop.settings
        exchange = Exchange(requestID: loop.nextRequestID(), start: .now())
        exchange.method = head.method
        exchange.clientIsHTTP10 = head.version == .http1_0
        exchange.clientKeepAlive = head.keepAlive && !loop.draining
        exchange.wantsHTML = RequestPipeline.acceptsHTML(head.block)
        exchange.isDocumentNavigation = RequestPipeline.isDocumentNavigation(head, acceptsHTML: exchange.wantsHTML)
        switch head.framing {
        case .none, .untilClose: exchange.requestBody = .none
        case .contentLength(let length): exchange.requestBody = .contentLength(remaining: length)
        case .chunked: exchange.requestBody = .chunked(ChunkedDecoder(limits: settings.limits))
        }
        exchange.requestHadBody = !requestBodyIsEmpty
        // Made only when it will be written; applyImpersonationRules makes one otherwise.
        exchange.log = settings.logAllRequests ? ExchangeLog(method: head.methodString, proto: proto) : nil
        let credentials = RequestCredentials.scan(head.block)

        let sanitized: RequestPipeline.Sanitized
        switch RequestPipeline.sanitize(head, impersonateHeader: credentials.impersonateHeader, settings: settings) {
        case .proceed(let value):
            sanitized = value
        case .answer(let answer):
            noteRefused(head, credentials)
            return send(answer)
        }
        exchange.isUpgrade = sanitized.isUpgrade
        exchange.webSocketKey = sanitized.webSocketKey
        var facts = HeaderRewriter.RequestFacts(
            requestID: exchange.requestID, clientAddress: clientAddress, peerIsTrustedProxy: peerIsTrustedProxy,
            upgrade: sanitized.isUpgrade, targetOverride: sanitized.targetOverride, hostOverride: sanitized.hostOverride)
        let target = RequestTarget(head: head, override: facts.targetOverride)
        exchange.log?.fields.path = target.path
        exchange.log?.fields.query = target.queryIfAny
        if let range = credentials.clientRequestID { exchange.log?.fields.clientRequestID = head.block.string(range) }
        let now = Date()
        let identity: IdentityResult
        do {
            identity = try resolveIdentity(head, credentials, host: facts.hostOverride, now: now)
        } catch {
            return send(.invalidToken)
        }
        let admission = RequestPipeline.admit(
            head, target: target, identity: identity, sanitized: sanitized, wantsHTML: exchange.wantsHTML,
            storeWithinGrace: loop.storeHealth.withinGrace(), settings: settings)
        if case .storeUnavailable = admission { return send(.storeUnavailable) }
        exchange.log?.fields.user = identity?.memo.forwarded.user.username
        exchange.signIn = identity?.memo.principal.session?.idHash
        switch admission {
        case .console:
            exchange.log?.fields.user = identity?.memo.principal.user.username  // the console never acts as the target
            return startConsole(head, target: target, identity: identity)
        case .announceEnd(let notice):
            return announceEnd(notice, head: head)
        case .answer(let answer):
            return send(answer)
        case .forward, .storeUnavailable:
            break
        }
        if let identified = identity, identified.memo.impersonating, let session = identified.memo.principal.impersonation {
            guard applyImpersonationRules(head, target: target, session: session, principal: identified.memo.principal, facts: &facts) else { return }
        } else if let signIn = exchange.signIn,
                  let cookies = loop.identity.cookieJars.administratorCookies(signIn: signIn, fields: head.block.pairs, live: loop.identity.live) {
            facts.impersonationCookies = cookies ?? ""  // SPEC §7: not the app's values from an ended session
        }
        noteTargetNotice(head, identity, target: target, facts: &facts)
        facts.identity = identity?.memo.forwarded.lines
        facts.filterCookies = credentials.hasActAsCookies
        facts.dropActAsToken = credentials.hasActAsToken

        var out = context.channel.allocator.buffer(capacity: head.block.bytes.readableBytes + 256 + (facts.identity?.count ?? 0))
        exchange.upstreamHostRange = HeaderRewriter.writeUpstreamRequest(head, facts: facts, settings: settings, into: &out)
        exchange.upstreamRequestHead = out
        state = .exchange
        acquireUpstreamOnceBuffered(expectContinue: head.expectContinue)
    }

    /// ALPN chose `h2`: this handler gives the connection to HTTP2Connection, whose streams
    /// each get a DownstreamHandler of their own.
    private func switchToHTTP2(context: ChannelHandlerContext) {
        state = .closed
        loop.unregister(self)
        let pipeline = context.pipeline.syncOperations
        do {
            // mTLS: the connection's certificate signs in on each stream instead (SPEC §10.3).
            var certificate: HTTP2Connection.StreamCertificate?
            if let signIn = try? pipeline.handler(type: ClientCertificateHandler.self) {
                if let der = try? pipeline.handler(type: NIOSSLServerHandler.self).peerCertificate?.toDERBytes() {
                    certificate = .init(settings: signIn.settings, der: der)
                }
                pipeline.removeHandler(signIn, promise: nil)
            }
            try HTTP2Connection.configure(pipeline, loop: loop, certificate: certificate)
        } catch {
            return context.close(promise: nil)
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    // MARK: helpers

    static func addressBytes(_ address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        default:
            return nil
        }
    }
}
