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
final class DownstreamHandler: ChannelDuplexHandler, UpstreamOwner {
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

    private unowned let loop: LoopContext
    private var context: ChannelHandlerContext!
    private var settings: ProxySettings
    private var parser: HeadParser
    private var inbound = ByteBuffer()
    private var state = State.awaitingHead

    private var clientAddress: [UInt8] = []
    /// The same as text, for the request log (once per connection).
    private var clientIPText = "unknown"
    private var peerIsTrustedProxy = false

    private var readPending = false
    private var tlsHandshakeDone = false

    // Timers (checked by the loop's sweep).
    private var headStartedAt: NIODeadline?
    private var idleSince: NIODeadline?
    private var upstreamDeadline: NIODeadline?
    private var lastClientActivity = NIODeadline.now()
    private var bodyClock = BodyProgressClock()
    /// While a chunked body is buffered before an upstream connection is taken (exchange id).
    private var bodyLookahead: (exchange: UInt64, scan: ChunkedLookahead)?
    /// A slot of the loop's cap on streaming uploads (StreamingBodySlots): waited for or held.
    private var streamingSlot = StreamingSlotState.none

    // The current exchange.
    private var exchangeID: UInt64 = 0
    private var inFlight = false
    private var requestID = RequestID(high: 0, low: 0)
    private var requestStart = NIODeadline.now()
    private var requestMethod = HTTPMethod.get
    private var requestWantsHTML = false
    /// The browser will show the answer as a document (any method; see isDocumentNavigation).
    private var requestIsDocumentNavigation = false
    private var clientKeepAlive = true
    private var clientIsHTTP10 = false
    private var isUpgrade = false
    /// The client's `Sec-WebSocket-Key`: an upstream 101 must answer it.
    private var webSocketKey: String?
    private var upstreamRequestHead = ByteBuffer()
    /// Where the forwarded `X-Forwarded-Host` value lies in `upstreamRequestHead`.
    private var upstreamHostRange = 0..<0
    private var requestBody = RequestBody.none
    private var requestSent = false
    private var requestHadBody = false
    private var upstream: UpstreamConnection?
    private var waiterID: UInt64?
    private var attempts = 0
    private var responseParser: HeadParser
    private var upstreamInbound = ByteBuffer()
    private var responseBody = ResponseBody.done
    private var downstreamFraming = HeaderRewriter.DownstreamFraming.none
    private var responseStarted = false
    private var responseStatus = 0
    private var closeAfterResponse = false
    private var upstreamReusable = true
    private var upstreamBytesSeen = false

    private var pendingOut = ByteBuffer()
    private let crlf: ByteBuffer

    // Identity of the last request on this connection (see IdentityMemo).
    private var identityMemo: IdentityMemo?
    /// The impersonation session the current exchange (or tunnel) was forwarded under: cut
    /// when that session ends (SPEC §7).
    private var exchangeImpersonationID: String?
    /// Where `Set-Cookie` of the current response goes while impersonating, and the path it
    /// was requested for.
    private var responseCookieJar: CookieJar?
    private var responseCookiePath = "/"
    /// The sign-in session (id hash) of the current request: its browser is due the
    /// restoration of its own app cookies once an impersonation of it ended (CookieJars).
    private var exchangeSignIn: String?
    /// The session whose in-flight count this exchange holds (see SessionActivity).
    private var countedSessionID: String?

    // The request log record of the current exchange, and whether its response is held back
    // until that record is on disk (impersonated requests, SPEC §8).
    private var exchangeLog: ExchangeLog?
    private var auditHeld = false
    /// Some response bytes of this exchange already went to the client (it cannot be
    /// replaced by an error any more).
    private var responseBytesSent = false

    /// While impersonating a page load: what the banner shows, should the answer be HTML.
    private var bannerInfo: BannerInfo?
    /// Active while an HTML response is being rewritten.
    private var pageRewriter: PageRewriter?
    /// The head of a rewritten navigation, held until the rewriter knows the page can carry
    /// the banner (then it leaves first), so that one that cannot is refused instead.
    private var heldResponseHead: ByteBuffer?
    /// The rewriter refused or cut the response: the rest of the upstream's body is not read.
    private var responseReplaced = false
    private var rewriteOutput: [ByteBuffer] = []

    // The console request being read or answered.
    private var consoleHead: ConsoleHead?
    private var consoleBody: [UInt8] = []
    private var consoleBodyComplete = false
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

    init(loop: LoopContext) {
        self.loop = loop
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
        if var log = exchangeLog, inFlight {
            // The client left before the exchange completed: logged, with nginx's 499.
            exchangeLog = nil
            log.fields.upstreamNanoseconds = log.upstreamStarted.map { (NIODeadline.now() - $0).nanoseconds }
            loop.log(log, requestID: requestID, clientIP: clientIPText, status: responseStatus == 0 ? 499 : responseStatus,
                     duration: (NIODeadline.now() - requestStart).nanoseconds, detail: "the client closed the connection")
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
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            tlsHandshakeDone = true
            // The handshake had header_timeout; the first head gets its own.
            if state == .awaitingHead, inbound.readableBytes == 0 { headStartedAt = .now() }
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

    private var wantsClientBytes: Bool {
        if auditHeld { return false }
        switch state {
        case .awaitingHead:
            return true
        case .exchange:
            switch requestBody {
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

    private func resumeReadingIfNeeded() {
        if readPending, wantsClientBytes {
            readPending = false
            context.read()
        }
    }

    // MARK: requests

    private func processInbound() {
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
    private func reject(_ error: HTTPParseError, head: ByteBuffer? = nil) {
        loop.metrics.rejectedRequests.increment()
        requestID = loop.nextRequestID()
        requestStart = .now()
        requestWantsHTML = false
        exchangeLog = loop.settings.logAllRequests ? ExchangeLog(refused: head ?? inbound) : nil  // SPEC §8: every request
        send(.malformedHead(error))
    }

    private func startExchange(_ head: RequestHead) {
        exchangeID &+= 1
        inFlight = true
        loop.metrics.inFlight.increment()
        settings = loop.settings
        requestID = loop.nextRequestID()
        requestStart = .now()
        requestMethod = head.method
        clientIsHTTP10 = head.version == .http1_0
        clientKeepAlive = head.keepAlive && !loop.draining
        requestWantsHTML = RequestPipeline.acceptsHTML(head.block)
        requestIsDocumentNavigation = RequestPipeline.isDocumentNavigation(head, acceptsHTML: requestWantsHTML)
        heldResponseHead = nil
        responseReplaced = false
        bodyClock = BodyProgressClock()
        responseStarted = false
        responseStatus = 0
        attempts = 0
        upstreamReusable = true
        closeAfterResponse = false
        requestSent = false
        switch head.framing {
        case .none, .untilClose: requestBody = .none
        case .contentLength(let length): requestBody = .contentLength(remaining: length)
        case .chunked: requestBody = .chunked(ChunkedDecoder(limits: settings.limits))
        }
        requestHadBody = !requestBodyIsEmpty
        responseBytesSent = false
        exchangeImpersonationID = nil
        responseCookieJar = nil
        exchangeSignIn = nil
        bannerInfo = nil
        // Made only when it will be written; applyImpersonationRules makes one otherwise.
        exchangeLog = settings.logAllRequests ? ExchangeLog(method: head.methodString) : nil
        let credentials = RequestCredentials.scan(head.block)

        isUpgrade = false
        webSocketKey = nil
        let sanitized: RequestPipeline.Sanitized
        switch RequestPipeline.sanitize(head, impersonateHeader: credentials.impersonateHeader, settings: settings) {
        case .proceed(let value):
            sanitized = value
        case .answer(let answer):
            noteRefused(head, credentials)
            return send(answer)
        }
        isUpgrade = sanitized.isUpgrade
        webSocketKey = sanitized.webSocketKey
        var facts = HeaderRewriter.RequestFacts(
            requestID: requestID, clientAddress: clientAddress, peerIsTrustedProxy: peerIsTrustedProxy,
            upgrade: sanitized.isUpgrade, targetOverride: sanitized.targetOverride, hostOverride: sanitized.hostOverride)
        let target = RequestTarget(head: head, override: facts.targetOverride)
        exchangeLog?.fields.path = target.path
        exchangeLog?.fields.query = target.queryIfAny
        if let range = credentials.clientRequestID { exchangeLog?.fields.clientRequestID = head.block.string(range) }
        let now = Date()
        let identity: IdentityResult
        do {
            identity = try resolveIdentity(head, credentials, host: facts.hostOverride, now: now)
        } catch {
            return send(.invalidToken)
        }
        let admission = RequestPipeline.admit(
            head, target: target, identity: identity, sanitized: sanitized, wantsHTML: requestWantsHTML,
            storeWithinGrace: loop.storeHealth.withinGrace(), settings: settings)
        if case .storeUnavailable = admission { return send(.storeUnavailable) }
        exchangeLog?.fields.user = identity?.memo.forwarded.user.username
        exchangeSignIn = identity?.memo.principal.session?.idHash
        switch admission {
        case .console:
            exchangeLog?.fields.user = identity?.memo.principal.user.username  // the console never acts as the target
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
        } else if let signIn = exchangeSignIn,
                  let cookies = loop.identity.cookieJars.administratorCookies(signIn: signIn, fields: head.block.pairs, live: loop.identity.live) {
            facts.impersonationCookies = cookies ?? ""  // SPEC §7: not the app's values from an ended session
        }
        facts.identity = identity?.memo.forwarded.lines
        facts.filterCookies = credentials.hasActAsCookies
        facts.dropActAsToken = credentials.hasActAsToken

        var out = context.channel.allocator.buffer(capacity: head.block.bytes.readableBytes + 256 + (facts.identity?.count ?? 0))
        upstreamHostRange = HeaderRewriter.writeUpstreamRequest(head, facts: facts, settings: settings, into: &out)
        upstreamRequestHead = out
        state = .exchange
        acquireUpstreamOnceBuffered(expectContinue: head.expectContinue)
    }

    // MARK: identity

    typealias Identified = RequestPipeline.Identified
    typealias IdentityResult = Identified?

    struct InvalidToken: Error {}

    /// Who is asking: from the connection's memo when nothing changed, else from the live
    /// state. An `actas_` bearer token that does not resolve is an error (401); a session
    /// cookie that does not resolve just means "not signed in".
    private func resolveIdentity(_ head: RequestHead, _ credentials: RequestCredentials, host: [UInt8]?, now: Date) throws -> IdentityResult {
        let authentication: ConsoleRequest.Authentication
        let range: Range<Int>
        if let token = credentials.bearerToken {
            authentication = .token
            range = token
        } else if let cookie = credentials.sessionCookie, !cookie.isEmpty {
            authentication = .session
            range = cookie
        } else {
            return nil
        }
        let live = loop.identity.live
        let generation = live.generation
        return try head.block.withUnsafeBytes { raw -> IdentityResult in
            let hostRange = host == nil ? head.hostIndex.map { head.block.fields[$0].valueRange } : nil
            if let memo = identityMemo, memo.matches(raw, range, generation: generation, now: now),
               settings.assertionIssuer != nil || Self.sameHost(memo.issuerHost, raw, hostRange, host) {
                return Identified(memo: memo, authentication: authentication)
            }
            identityMemo = nil
            let hash = Secrets.hash(UnsafeRawBufferPointer(rebasing: raw[range]))
            var principal = authentication == .token ? live.principal(tokenHash: hash) : live.principal(sessionHash: hash, now: now)
            // SPEC §7: an impersonation that must end ends here, before anything is forwarded.
            if let current = principal, let session = current.impersonation,
               let reason = loop.console.impersonations.endReason(current, now: now) {
                loop.console.impersonations.end(session.id, reason: reason, context: EventContext(requestID: requestID.string, clientIP: clientIPString), now: now)
                principal = live.principal(sessionHash: hash, now: now)
            }
            guard let principal else {
                if authentication == .token { throw InvalidToken() }
                return nil
            }
            let issuerHost: [UInt8] = settings.assertionIssuer != nil ? [] : (host ?? hostRange.map { Array(raw[$0]) } ?? [])
            let issuer = settings.assertionIssuer ?? "https://" + String(decoding: issuerHost, as: UTF8.self)
            guard let forwarded = loop.identity.identity(for: principal, issuer: issuer, settings: settings, now: now) else { return nil }
            var expiresAt = min(forwarded.refreshAt, principal.session?.expiresAt ?? .distantFuture)
            if let session = principal.impersonation {
                // Time-based ends: re-resolve (and end) the moment the session or consent runs out.
                expiresAt = min(expiresAt, session.expiresAt, principal.targetConsent?.expiresAt ?? .distantFuture)
            }
            let memo = IdentityMemo(
                credential: Array(raw[range]), generation: generation, principal: principal, forwarded: forwarded,
                issuerHost: issuerHost, expiresAt: expiresAt)
            identityMemo = memo
            return Identified(memo: memo, authentication: authentication)
        }
    }

    var clientIPString: String { String(decoding: clientAddress, as: UTF8.self) }

    /// SPEC §8 for a request refused before it was identified: where it went (the target as
    /// written) and who sent it — looked up only, no session is ended and nothing is minted.
    private func noteRefused(_ head: RequestHead, _ credentials: RequestCredentials) {
        guard exchangeLog != nil else { return }
        let target = RequestTarget(head: head, override: nil)
        exchangeLog?.fields.path = target.path
        exchangeLog?.fields.query = target.queryIfAny
        if let range = credentials.clientRequestID { exchangeLog?.fields.clientRequestID = head.block.string(range) }
        guard let range = credentials.bearerToken ?? credentials.sessionCookie, !range.isEmpty else { return }
        let live = loop.identity.live
        let hash = head.block.withUnsafeBytes { Secrets.hash(UnsafeRawBufferPointer(rebasing: $0[range])) }
        let found = credentials.bearerToken != nil ? live.principal(tokenHash: hash) : live.principal(sessionHash: hash, now: Date())
        guard let principal = found else { return }
        let actingAs = principal.impersonation == nil ? nil : principal.target
        exchangeLog?.fields.user = (actingAs ?? principal.user).username
        exchangeLog?.fields.impersonator = actingAs == nil ? nil : principal.user.username
        exchangeLog?.fields.sessionID = principal.impersonation?.id  // SPEC §8: as the session's other records
        exchangeLog?.fields.mode = principal.impersonation?.mode
    }

    // MARK: impersonation

    /// SPEC §7 for a request made while impersonating: the normalised path is checked and is
    /// what is forwarded; hidden paths and (read-only) unsafe methods, method overrides and
    /// upgrades are refused; the application's cookies come from the session's own jar.
    /// Returns false when the request was refused.
    private func applyImpersonationRules(
        _ head: RequestHead, target: RequestTarget, session: ImpersonationSession, principal: LiveState.Principal,
        facts: inout HeaderRewriter.RequestFacts
    ) -> Bool {
        if exchangeLog == nil {
            exchangeLog = ExchangeLog(method: head.methodString, path: target.path, query: target.queryIfAny)
            exchangeLog?.fields.clientRequestID = head.block.first("x-request-id")
        }
        // Logged as the administrator acting as the target, durably, with headers and body.
        exchangeLog?.fields.user = principal.target?.username
        exchangeLog?.fields.impersonator = principal.user.username
        exchangeLog?.fields.sessionID = session.id
        exchangeLog?.fields.mode = session.mode
        exchangeLog?.headers = head.block.pairs.map { AuditHeader($0.0, $0.1) }
        if !requestBodyIsEmpty {
            // Types the redactor cannot parse are not kept at all: only their size and type.
            let contentType = head.block.first("content-type")
            let keep = ExchangeLog.capturable(contentType) ? loop.audit.captureBytes : 0
            exchangeLog?.contentType = contentType
            exchangeLog?.contentEncoding = head.block.first("content-encoding")
            exchangeLog?.captureLimit = keep
            exchangeLog?.capture = context.channel.allocator.buffer(capacity: min(keep, 16 * 1024))
        }
        let path: [UInt8]
        switch RequestPipeline.normalizedPath(target) {
        case .badEncoding(let written):
            deny(.badPathEncoding, head: head, path: written, session: session, principal: principal)
            return false
        case .path(let checked, let targetOverride):
            path = checked
            if let targetOverride { facts.targetOverride = targetOverride }
        }
        let pathString = String(decoding: path, as: UTF8.self)
        exchangeLog?.fields.path = pathString
        switch RequestPipeline.impersonationGate(
            path: path, head: head, mode: session.mode, isUpgrade: isUpgrade, auditHealthy: loop.audit.isHealthy, settings: settings) {
        case .allow:
            break
        case .auditUnavailable:
            send(.auditUnavailable(close: false))
            return false
        case .refuse(let refusal):
            deny(refusal, head: head, path: pathString, session: session, principal: principal)
            return false
        }
        let jar = loop.identity.cookieJars.jar(for: session, live: loop.identity.live)
        jar.noteBrowserCookies(CookiePassThrough.browserCookies(head.block.pairs))
        facts.impersonationCookies = jar.header(for: pathString, now: Date()) ?? ""
        facts.narrowAcceptEncoding = true
        if RequestPipeline.isPageLoad(head), let targetUser = principal.target {
            bannerInfo = BannerInfo(
                targetName: targetUser.displayName, targetUsername: targetUser.username, mode: session.mode, sessionID: session.id,
                startedAt: session.startedAt, expiresAt: session.expiresAt, now: Date(), warnBeforeEnd: settings.warnBeforeEnd,
                csrfToken: principal.session?.csrfToken ?? "", path: target.originForm,
                extendable: session.expiresAt < min(session.startedAt.addingTimeInterval(settings.maxImpersonation),
                                                    principal.targetConsent?.expiresAt ?? .distantFuture))
        }
        responseCookieJar = jar
        responseCookiePath = pathString
        exchangeImpersonationID = session.id
        return true
    }

    private func deny(_ refusal: RequestRefusal, head: RequestHead, path: String, session: ImpersonationSession, principal: LiveState.Principal) {
        loop.console.events.record(AuditRecord(
            type: .requestDenied, requestID: requestID.string, clientIP: clientIPString, method: head.methodString, path: path,
            status: refusal.httpStatus, user: principal.target?.username, impersonator: principal.user.username,
            sessionID: session.id, mode: session.mode, reason: refusal.code))
        let page = requestWantsHTML ? ImpersonationRefusalPage(
            session: session, principal: principal, settings: settings, referer: head.block.first("referer"),
            host: head.block.first("host"), current: head.method == .get || head.method == .head ? path : nil) : nil
        send(.refusal(refusal), impersonating: page)
    }

    /// SPEC §7: the first request after an announced end is not forwarded. Navigations go to
    /// the page that says why; everything else gets `403 impersonation_ended`.
    private func announceEnd(_ session: ImpersonationSession, head: RequestHead) {
        loop.console.impersonations.noticeShown(session)
        identityMemo = nil
        let notice = RequestPipeline.endNotice(session, head: head)
        if let html = notice.html { requestWantsHTML = html }  // SPEC §7: JSON for everything that is not a navigation
        send(notice.answer)
    }

    /// Called by the loop's sweep: an exchange or tunnel forwarded under a session that has
    /// since ended is cut — WebSockets get close code 1008 (policy violation).
    func checkImpersonation(live: LiveState) {
        guard let id = exchangeImpersonationID, state == .exchange || state == .tunnel else { return }
        guard live.read({ $0.impersonations[id] == nil }) else { return }
        exchangeImpersonationID = nil
        if state == .tunnel {
            let reason = Array("impersonation ended".utf8)
            var frame = context.channel.allocator.buffer(capacity: 4 + reason.count)
            frame.writeBytes([0x88, UInt8(2 + reason.count), 0x03, 0xF0])
            frame.writeBytes(reason)
            writePending()
            context.writeAndFlush(wrapOutboundOut(frame)).assumeIsolated().whenComplete { [context] _ in context?.close(promise: nil) }
            state = .closed
            abandonUpstream()
        } else {
            abandonUpstream()
            forceClose()
        }
    }

    static func sameHost(_ memo: [UInt8], _ raw: UnsafeRawBufferPointer, _ range: Range<Int>?, _ override: [UInt8]?) -> Bool {
        if let override { return override == memo }
        guard let range, range.count == memo.count else { return false }
        return memo.withUnsafeBytes { memcmp($0.baseAddress!, raw.baseAddress! + range.lowerBound, range.count) == 0 }
    }

    // MARK: console

    private func startConsole(_ head: RequestHead, target: RequestTarget, identity: IdentityResult) {
        state = .console
        upstreamDeadline = nil
        consoleBody = []
        consoleBodyComplete = false
        consoleHead = ConsoleHead(
            method: head.methodString, path: target.path, query: target.query,
            headers: head.block.fields.map { (head.block.name($0).lowercased(), head.block.value($0)) },
            principal: identity?.memo.principal, authentication: identity?.authentication ?? .none)
        if head.expectContinue, !requestBodyIsEmpty {
            pendingOut.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
            flushDownstream()
        }
        readConsoleBody()
    }

    /// Reads the (small) request body of a console request, then hands it over.
    private func readConsoleBody() {
        guard !consoleBodyComplete else { return }
        switch requestBody {
        case .none, .done:
            requestBody = .done
        case .contentLength(let remaining):
            let take = Int(min(Int64(inbound.readableBytes), remaining))
            if take > 0 { consoleBody.append(contentsOf: inbound.readBytes(length: take)!) }
            requestBody = remaining == Int64(take) ? .done : .contentLength(remaining: remaining - Int64(take))
        case .chunked:
            let outcome = decodeChunkedRequestBody { slice in
                consoleBody.append(contentsOf: slice.readableBytesView)
                return consoleBody.count <= Self.maxConsoleBody
            }
            if case .failed = outcome { return }
        }
        if consoleBody.count > Self.maxConsoleBody {
            send(.consoleBodyTooLarge)
            return
        }
        guard case .done = requestBody else {
            resumeReadingIfNeeded()
            return
        }
        requestSent = true
        consoleBodyComplete = true
        dispatchConsole()
    }

    private func dispatchConsole() {
        guard let head = consoleHead else { return }
        exchangeLog?.fields.bytesIn = Int64(consoleBody.count)
        let request = ConsoleRequest(
            method: head.method, path: head.path, query: head.query, headers: head.headers, body: consoleBody,
            clientIP: String(decoding: clientAddress, as: UTF8.self), requestID: requestID.string,
            principal: head.principal, authentication: head.authentication)
        consoleBody = []
        let console = loop.console
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = exchangeID
        Task {
            let response = await console.handle(request)
            bound.eventLoop.execute { bound.value.consoleAnswered(response, exchange: id) }
        }
    }

    private func consoleAnswered(_ response: ConsoleResponse, exchange id: UInt64) {
        guard id == exchangeID, state == .console else { return }
        consoleHead = nil
        responseStatus = response.status
        responseStarted = true
        closeAfterResponse = !clientKeepAlive || loop.draining
        pendingOut.writeStaticString("HTTP/1.1 ")
        HeaderRewriter.writeStatus(response.status, into: &pendingOut)
        pendingOut.writeString(ErrorResponse.reasonPhrase(response.status))
        pendingOut.writeStaticString("\r\n")
        for (name, value) in response.headers {
            pendingOut.writeString(name)
            pendingOut.writeStaticString(": ")
            pendingOut.writeString(value)
            pendingOut.writeStaticString("\r\n")
        }
        if let restored = loop.identity.cookieJars.takeRestoration(signIn: exchangeSignIn, live: loop.identity.live) { pendingOut.writeString(restored) }
        pendingOut.writeStaticString("Content-Length: ")
        HeaderRewriter.writeDecimal(Int64(response.body.count), into: &pendingOut)
        pendingOut.writeStaticString("\r\nX-Request-Id: ")
        requestID.write(into: &pendingOut)
        pendingOut.writeStaticString("\r\n")
        pendingOut.writeBytes(settings.hstsLine)
        if closeAfterResponse { pendingOut.writeStaticString("Connection: close\r\n") }
        pendingOut.writeStaticString("\r\n")
        if requestMethod != .head { pendingOut.writeBytes(response.body) }
        exchangeLog?.fields.bytesOut = Int64(response.body.count)
        completeExchange()
    }

    /// Request buffering (RequestBuffering): an upstream connection is taken once the body is
    /// here, or the buffer is full; until then the client may answer `100 Continue` from here.
    private func acquireUpstreamOnceBuffered(expectContinue: Bool = false) {
        guard streamingSlot == .none else { return }  // queued for a slot: reading is paused
        let ready: Bool
        var streaming = false
        switch requestBody {
        case .none, .done:
            ready = true
        case .contentLength(let remaining):
            ready = RequestBuffering.contentLengthReady(remaining: remaining, buffered: inbound.readableBytes, limit: Self.maxBufferedRequestBytes)
            streaming = Int64(inbound.readableBytes) < remaining
        case .chunked(let decoder):
            if bodyLookahead?.exchange != exchangeID { bodyLookahead = (exchangeID, ChunkedLookahead(decoder)) }
            do {
                let complete = try bodyLookahead!.scan.isComplete(inbound)
                ready = complete || inbound.readableBytes >= Self.maxBufferedRequestBytes
                streaming = !complete
            } catch {
                return requestBodyFailed(error)
            }
        }
        guard ready else {
            if expectContinue {
                pendingOut.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
                flushDownstream()
            }
            return resumeReadingIfNeeded()
        }
        if streaming {
            // Waiting here is the proxy's doing: the buffer is full, so reading and the body
            // clock stay paused, and the response timeout starts only with the slot.
            streamingSlot = .waiting
            guard loop.takeStreamingSlot(self, exchange: exchangeID) else { return }
            streamingSlot = .held
        }
        upstreamDeadline = .now() + settings.responseTimeout
        acquireUpstream()
    }

    func isWaitingForStreamingSlot(exchange: UInt64) -> Bool {
        streamingSlot == .waiting && exchange == exchangeID && state == .exchange
    }

    func streamingSlotGranted() {
        streamingSlot = .held
        upstreamDeadline = .now() + settings.responseTimeout
        acquireUpstream()
    }

    /// Every way out of streaming the body (it completed, or the exchange ended) comes here.
    private func leaveStreamingSlot() {
        if streamingSlot.leave() { loop.releaseStreamingSlot() }
    }

    /// The chunked body of this exchange is all in `inbound` (no more client bytes needed).
    private var chunkedBodyBuffered: Bool {
        guard let lookahead = bodyLookahead, lookahead.exchange == exchangeID else { return false }
        return lookahead.scan.complete
    }

    private func acquireUpstream() {
        attempts += 1
        responseBody = .awaitingHead
        responseParser.reset()
        upstreamInbound.clear()
        upstreamBytesSeen = false
        let id = exchangeID
        waiterID = loop.pool.acquire { [self] result in
            guard id == exchangeID, state == .exchange else {
                if case .success(let connection) = result { loop.pool.release(connection) }
                return
            }
            waiterID = nil
            switch result {
            case .success(let connection):
                attach(connection)
            case .failure:
                upstreamFailed(.upstreamUnreachable)
            }
        }
    }

    private func attach(_ connection: UpstreamConnection) {
        // The session may have ended while this request waited for a connection: check again
        // right before the first byte goes out (SPEC §7, "before forwarding").
        if let id = exchangeImpersonationID, loop.identity.live.read({ $0.impersonations[id] == nil }) {
            loop.pool.release(connection)
            exchangeImpersonationID = nil
            identityMemo = nil
            send(.impersonationEndedBeforeForwarding)
            return
        }
        if let id = exchangeImpersonationID, countedSessionID == nil {
            countedSessionID = id
            loop.console.impersonations.activity.begin(id)
        }
        if exchangeLog?.upstreamStarted == nil { exchangeLog?.upstreamStarted = .now() }
        upstream = connection
        connection.owner = self
        connection.channel.write(upstreamRequestHead, promise: nil)
        forwardRequestBody()
        connection.channel.flush()
        connection.handler.setPaused(!context.channel.isWritable)
    }

    /// Moves request body bytes from `inbound` to the upstream, re-framing chunked bodies.
    private func forwardRequestBody() {
        guard let upstream else {
            if attempts == 0, state == .exchange { return acquireUpstreamOnceBuffered() }
            resumeReadingIfNeeded()
            return
        }
        var wrote = false
        switch requestBody {
        case .none:
            requestBody = .done
            requestSent = true
        case .done:
            break
        case .contentLength(let remaining):
            let take = Int(min(Int64(inbound.readableBytes), remaining))
            if take > 0 {
                let slice = inbound.readSlice(length: take)!
                exchangeLog?.requestBody(slice)
                upstream.channel.write(slice, promise: nil)
                wrote = true
            }
            if remaining - Int64(take) == 0 {
                requestBody = .done
                requestSent = true
            } else {
                requestBody = .contentLength(remaining: remaining - Int64(take))
            }
        case .chunked:
            let outcome = decodeChunkedRequestBody { slice in
                exchangeLog?.requestBody(slice)
                var header = context.channel.allocator.buffer(capacity: 18)
                ChunkedEncoding.writeChunkHeader(slice.readableBytes, into: &header)
                upstream.channel.write(header, promise: nil)
                upstream.channel.write(slice, promise: nil)
                upstream.channel.write(crlf, promise: nil)
                wrote = true
                return true
            }
            switch outcome {
            case .failed:
                return
            case .end(let trailers):
                // SPEC §9: request trailers are dropped (and named in the log), never forwarded.
                if let dropped = RequestSanitizer.droppedTrailersDetail(trailers) { exchangeLog?.detail = dropped }
                var tail = context.channel.allocator.buffer(capacity: 5)
                tail.writeStaticString("0\r\n\r\n")
                upstream.channel.write(tail, promise: nil)
                wrote = true
                requestSent = true
            case .needMore, .stopped:
                break
            }
        }
        if wrote {
            upstream.channel.flush()
            upstreamDeadline = .now() + settings.responseTimeout
        }
        if requestSent { leaveStreamingSlot() }
        resumeReadingIfNeeded()
    }

    enum ChunkedProgress {
        case needMore
        case end(HeaderBlock?)
        /// `onData` asked to stop.
        case stopped
        /// The body was malformed; the exchange has been answered.
        case failed
    }

    /// Decodes what `inbound` holds of a chunked request body, handing each data slice to
    /// `onData` (which returns false to stop). Leaves `requestBody` as `.chunked` while more
    /// is expected, `.done` otherwise.
    private func decodeChunkedRequestBody(_ onData: (ByteBuffer) -> Bool) -> ChunkedProgress {
        guard case .chunked(var decoder) = requestBody else { return .needMore }
        // Park the decoder in `.done` while it is mutated, to keep it uniquely referenced.
        requestBody = .done
        while true {
            let event: ChunkedDecoder.Event?
            do {
                event = try decoder.next(&inbound)
            } catch {
                requestBodyFailed(error)
                return .failed
            }
            switch event {
            case .data(let slice):
                if !onData(slice) { return .stopped }
            case .end(let trailers):
                return .end(trailers)
            case nil:
                requestBody = .chunked(decoder)
                return .needMore
            }
        }
    }

    private func requestBodyFailed(_ error: HTTPParseError) {
        loop.metrics.rejectedRequests.increment()
        abandonUpstream()
        if responseStarted {
            forceClose()
        } else {
            send(.malformedBody(error))
        }
    }

    // MARK: responses

    func upstreamRead(_ buffer: ByteBuffer) {
        upstreamBytesSeen = true
        upstreamDeadline = .now() + settings.responseTimeout
        switch state {
        case .tunnel:
            emit(buffer)
        case .exchange:
            var buffer = buffer
            processUpstream(&buffer)
        case .awaitingHead, .console, .closed:
            break
        }
    }

    func upstreamReadComplete() {
        if state == .exchange || state == .tunnel {
            flushDownstream()
        }
    }

    private func processUpstream(_ buffer: inout ByteBuffer) {
        while state == .exchange {
            switch responseBody {
            case .awaitingHead:
                if upstreamInbound.readableBytes == 0 {
                    upstreamInbound = buffer
                } else {
                    upstreamInbound.writeBuffer(&buffer)
                }
                buffer = ByteBuffer()
                let length: Int?
                do {
                    length = try responseParser.parse(upstreamInbound)
                } catch {
                    upstreamFailed(.upstreamUnsafeResponse)
                    return
                }
                guard let length else { return }
                let headBytes = upstreamInbound.readSlice(length: length)!
                let head: ResponseHead
                do {
                    head = try responseParser.finishResponse(headBytes, requestMethod: requestMethod)
                } catch {
                    upstreamFailed(.upstreamUnsafeResponse)
                    return
                }
                responseParser.reset()
                buffer = upstreamInbound
                upstreamInbound = ByteBuffer()
                if head.status == 101 {
                    guard isUpgrade else {
                        upstreamFailed(.upstreamUnaskedSwitch)
                        return
                    }
                    // RFC 6455 §4.2.2: a 101 that does not answer this handshake's key is not tunnelled.
                    guard WebSocketAccept.matches(accept: head.block.first("sec-websocket-accept"), key: webSocketKey) else {
                        upstreamFailed(.upstreamBadWebSocketAccept)
                        return
                    }
                    startTunnel(head, rest: buffer)
                    return
                }
                if head.status < 200 {
                    if !clientIsHTTP10 {
                        HeaderRewriter.writeInterimResponse(head, into: &pendingOut)
                        flushDownstream()
                    }
                    continue
                }
                startResponse(head)
            case .contentLength(let remaining):
                let take = Int(min(Int64(buffer.readableBytes), remaining))
                if take > 0 { emitBody(buffer.readSlice(length: take)!) }
                guard state == .exchange, !responseReplaced else { return }
                if remaining == Int64(take) {
                    finishRewriting(writeLastChunk: true)
                    if buffer.readableBytes > 0 { upstreamReusable = false }
                    finishResponse()
                } else {
                    responseBody = .contentLength(remaining: remaining - Int64(take))
                }
                return
            case .chunked(var decoder):
                responseBody = .done
                while true {
                    let event: ChunkedDecoder.Event?
                    do {
                        event = try decoder.next(&buffer)
                    } catch {
                        // The head went out already: all we can do is cut the response.
                        loop.metrics.upstreamErrors.increment()
                        forceClose()
                        return
                    }
                    switch event {
                    case .data(let slice):
                        emitBody(slice)
                        if responseReplaced { return }
                    case .end(let trailers):
                        finishRewriting(writeLastChunk: false)
                        if downstreamFraming == .chunked {
                            HeaderRewriter.writeTrailers(trailers, into: &pendingOut)
                        }
                        if buffer.readableBytes > 0 { upstreamReusable = false }
                        finishResponse()
                        return
                    case nil:
                        responseBody = .chunked(decoder)
                        return
                    }
                }
            case .untilClose:
                if buffer.readableBytes > 0 { emitBody(buffer) }
                return
            case .done:
                // Bytes after a complete response: this connection cannot be trusted again.
                if buffer.readableBytes > 0 { upstreamReusable = false }
                return
            }
        }
    }

    private func startResponse(_ head: ResponseHead) {
        responseStatus = head.status
        responseStarted = true
        if !head.keepAlive { upstreamReusable = false }
        if isUpgrade { upstreamReusable = false }

        var contentLength: Int64 = 0
        var passContentLength = false
        switch head.framing {
        case .none:
            if requestMethod == .head || head.status == 304 {
                passContentLength = true
                downstreamFraming = .none
            } else if head.status == 204 {
                downstreamFraming = .none
            } else {
                downstreamFraming = .contentLength
            }
            responseBody = .done
        case .contentLength(let length):
            downstreamFraming = .contentLength
            contentLength = length
            responseBody = .contentLength(remaining: length)
        case .chunked:
            downstreamFraming = clientIsHTTP10 ? .close : .chunked
            responseBody = .chunked(ChunkedDecoder(limits: Self.responseLimits(settings.limits)))
        case .untilClose:
            downstreamFraming = clientIsHTTP10 ? .close : .chunked
            upstreamReusable = false
            responseBody = .untilClose
        }
        pageRewriter = nil
        heldResponseHead = nil
        responseReplaced = false
        if let info = bannerInfo {
            let emptyBody: Bool
            if case .done = responseBody { emptyBody = true } else if case .contentLength(0) = responseBody { emptyBody = true } else { emptyBody = false }
            // What a browser shows as a document: a form POST's answer as much as a GET's.
            let navigation = requestIsDocumentNavigation
            switch ResponseSanitizer.verdict(head, isHead: requestMethod == .head, emptyBody: emptyBody, navigation: navigation) {
            case .refuse(let why):
                refuseUnrewritable(why, banner: info, code: ResponseSanitizer.unrewritableCode)
                return
            case .rewrite(let coding):
                if let rewriter = try? PageRewriter(banner: ByteBuffer(bytes: Banner.markup(info)), coding: coding,
                                                    maxInflated: settings.maxRewrittenPage, refuseUndecorated: navigation) {
                    // The length changes: chunked (or close-delimited for HTTP/1.0 clients).
                    pageRewriter = rewriter
                    downstreamFraming = clientIsHTTP10 ? .close : .chunked
                }
            case .pass:
                break
            }
        }
        closeAfterResponse = !clientKeepAlive || downstreamFraming == .close || loop.draining
        var facts = HeaderRewriter.ResponseFacts(
            requestID: requestID, framing: downstreamFraming, contentLength: contentLength,
            close: closeAfterResponse, http10KeepAlive: clientIsHTTP10 && !closeAfterResponse,
            hstsLine: settings.hstsLine, passContentLength: passContentLength && pageRewriter == nil, upgrade: false,
            cookieJar: responseCookieJar, cookiePath: responseCookiePath)
        facts.restoredCookies = loop.identity.cookieJars.takeRestoration(signIn: exchangeSignIn, live: loop.identity.live)
        facts.rewritten = pageRewriter != nil
        facts.nosniff = exchangeImpersonationID != nil
        facts.upstreamAddress = settings.upstreamAddress
        facts.publicHost = upstreamRequestHead.getSlice(at: upstreamRequestHead.readerIndex + upstreamHostRange.lowerBound,
                                                        length: upstreamHostRange.count)
        let notes: HeaderRewriter.ResponseNotes
        if pageRewriter?.releasing == false {
            var held = context.channel.allocator.buffer(capacity: head.block.bytes.readableBytes + 256)
            notes = HeaderRewriter.writeDownstreamResponse(head, facts: facts, into: &held)
            heldResponseHead = held
        } else {
            notes = HeaderRewriter.writeDownstreamResponse(head, facts: facts, into: &pendingOut)
        }
        for name in notes.refusedCookies {
            loop.console.events.record(ResponseSanitizer.refusedCookieEvent(
                name: name, requestID: requestID, clientIP: clientIPText, log: exchangeLog?.fields, status: head.status))
        }
        if case .done = responseBody { finishResponse() }
    }

    private func startTunnel(_ head: ResponseHead, rest: ByteBuffer) {
        releaseSessionActivity()  // the request was answered; the tunnel is cut at the end instead
        if let log = exchangeLog {
            exchangeLog = nil
            loop.log(log, requestID: requestID, clientIP: clientIPText, status: 101,
                     duration: (NIODeadline.now() - requestStart).nanoseconds)
        }
        responseStatus = 101
        responseStarted = true
        let facts = HeaderRewriter.ResponseFacts(
            requestID: requestID, framing: .none, contentLength: 0, close: false, http10KeepAlive: false,
            hstsLine: settings.hstsLine, passContentLength: false, upgrade: true,
            cookieJar: responseCookieJar, cookiePath: responseCookiePath)
        HeaderRewriter.writeDownstreamResponse(head, facts: facts, into: &pendingOut)
        if rest.readableBytes > 0 { emit(rest) }
        flushDownstream()
        state = .tunnel
        recordCompletion()
        if inbound.readableBytes > 0, let upstream {
            upstream.channel.writeAndFlush(inbound, promise: nil)
            inbound.clear()
        }
        upstream?.handler.setPaused(!context.channel.isWritable)
        resumeReadingIfNeeded()
    }

    /// Body bytes in the framing the client gets.
    private func emitBody(_ slice: ByteBuffer) {
        guard state == .exchange else { return }  // refused or cut by an earlier piece
        if pageRewriter != nil {
            do {
                try pageRewriter!.feed(slice, allocator: context.channel.allocator, into: &rewriteOutput)
            } catch {
                rewriteFailed(error as? PageRewriter.Failure ?? .corruptEncoding)
                return
            }
            releaseHeldHead()
            for piece in rewriteOutput { emitFramed(piece) }
            rewriteOutput.removeAll(keepingCapacity: true)
            return
        }
        emitFramed(slice)
    }

    /// End of a rewritten body: what the rewriter held back (and the banner if the page never
    /// opened a body), and the last chunk when the upstream's framing had none.
    private func finishRewriting(writeLastChunk: Bool) {
        guard var rewriter = pageRewriter else { return }
        pageRewriter = nil
        rewriter.finish(into: &rewriteOutput)
        releaseHeldHead()
        for piece in rewriteOutput { emitFramed(piece) }
        rewriteOutput.removeAll(keepingCapacity: true)
        if writeLastChunk, downstreamFraming == .chunked { pendingOut.writeStaticString("0\r\n\r\n") }
    }

    /// The rewriter let output go: the held head leaves first.
    private func releaseHeldHead() {
        guard var head = heldResponseHead, pageRewriter?.releasing ?? true else { return }
        heldResponseHead = nil
        pendingOut.writeBuffer(&head)
    }

    /// The page cannot be rewritten after all (SPEC §7, `limits.max_rewritten_page`): answered
    /// in its place when nothing of it left yet, else cut, logged with why either way.
    private func rewriteFailed(_ failure: PageRewriter.Failure) {
        pageRewriter = nil
        responseReplaced = true
        rewriteOutput.removeAll(keepingCapacity: true)
        let detail = failure.detail(limit: settings.maxRewrittenPage)
        if heldResponseHead != nil, let info = bannerInfo {
            refuseUnrewritable(detail, banner: info, code: failure.code)
            return
        }
        loop.metrics.upstreamErrors.increment()
        if let log = exchangeLog {
            exchangeLog = nil
            loop.log(log, requestID: requestID, clientIP: clientIPText, status: responseStatus,
                     duration: (NIODeadline.now() - requestStart).nanoseconds, detail: detail)
        }
        abandonUpstream()
        recordCompletion()
        forceClose()
    }

    /// A response whose head is still held (nothing of it sent) is given up, so that an
    /// error can answer in its place. False when part of the response already left.
    private func dropHeldResponse() -> Bool {
        // The held head leaves before any body byte does, so nothing of this response left.
        guard heldResponseHead != nil else { return false }
        heldResponseHead = nil
        pageRewriter = nil
        rewriteOutput.removeAll(keepingCapacity: true)
        pendingOut.clear()
        responseBody = .done
        responseStarted = false
        return true
    }

    /// `502` with a page that carries the banner, in place of a document a navigation would
    /// show without it; a `request_denied` event says why.
    private func refuseUnrewritable(_ why: String, banner: BannerInfo, code: String) {
        pageRewriter = nil
        heldResponseHead = nil
        responseReplaced = true
        responseBody = .done  // what the upstream sends further is dropped with its connection
        exchangeLog?.detail = why
        let fields = exchangeLog?.fields
        loop.console.events.record(AuditRecord(
            type: .requestDenied, requestID: requestID.string, clientIP: clientIPText, method: fields?.method, path: fields?.path,
            status: 502, user: fields?.user, impersonator: fields?.impersonator, sessionID: fields?.sessionID, mode: fields?.mode,
            reason: code, detail: why))
        responseStatus = 502
        let mustClose = !clientKeepAlive || loop.draining || !(requestSent || requestBodyIsEmpty)
        var response = ResponseSanitizer.refusal(
            code: code, banner: banner, html: requestWantsHTML, requestID: requestID, hstsLine: settings.hstsLine, close: mustClose,
            allocator: context.channel.allocator)
        pendingOut.writeBuffer(&response)
        responseStarted = true
        closeAfterResponse = mustClose
        abandonUpstream()
        requestBody = .done
        completeExchange()
    }

    private func emitFramed(_ slice: ByteBuffer) {
        exchangeLog?.fields.bytesOut += Int64(slice.readableBytes)
        if downstreamFraming == .chunked {
            ChunkedEncoding.writeChunkHeader(slice.readableBytes, into: &pendingOut)
            emit(slice)
            ChunkedEncoding.writeCRLF(into: &pendingOut)
        } else {
            emit(slice)
        }
    }

    private func emit(_ buffer: ByteBuffer) {
        if buffer.readableBytes <= Self.coalesceLimit {
            var buffer = buffer
            pendingOut.writeBuffer(&buffer)
        } else {
            writePending()
            responseBytesSent = true
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    private func writePending() {
        guard pendingOut.readableBytes > 0, !auditHeld else { return }
        context.write(wrapOutboundOut(pendingOut), promise: nil)
        pendingOut.clear()
    }

    private func flushDownstream() {
        guard !auditHeld else { return }
        writePending()
        if responseStarted { responseBytesSent = true }
        context.flush()
    }

    private func finishResponse() {
        responseBody = .done
        // One reading of the clock ends the upstream time, the metrics and the log's duration.
        let now = NIODeadline.now()
        if let started = exchangeLog?.upstreamStarted { exchangeLog?.fields.upstreamNanoseconds = (now - started).nanoseconds }
        // Give the connection back before the last write: that write can synchronously
        // deliver the next pipelined request, which may want a connection at once.
        if let upstream {
            self.upstream = nil
            if requestSent, upstreamReusable {
                loop.pool.release(upstream)
            } else {
                loop.pool.discard(upstream)
            }
        }
        if !requestSent {
            // The upstream answered before the body was complete; the rest of the body
            // is still coming and cannot be told apart from a next request.
            closeAfterResponse = true
        }
        completeExchange(now: now)
    }

    private func recordCompletion(now: NIODeadline = .now()) {
        guard inFlight else { return }
        inFlight = false
        loop.metrics.inFlight.decrement()
        let elapsed = now - requestStart
        loop.metrics.recordResponse(status: responseStatus, nanoseconds: elapsed.nanoseconds)
    }

    /// The exchange no longer counts as in flight for its impersonation session.
    private func releaseSessionActivity() {
        if let id = countedSessionID {
            countedSessionID = nil
            loop.console.impersonations.activity.end(id)
        }
    }

    private func completeExchange(now: NIODeadline = .now()) {
        leaveStreamingSlot()
        releaseSessionActivity()
        recordCompletion(now: now)
        upstreamDeadline = nil
        exchangeImpersonationID = nil
        responseCookieJar = nil
        if let log = exchangeLog {
            exchangeLog = nil
            let duration = (now - requestStart).nanoseconds
            if log.durable {
                holdUntilLogged(log.record(requestID: requestID, clientIP: clientIPText, status: responseStatus, duration: duration))
                return
            }
            loop.log(log, requestID: requestID, clientIP: clientIPText, status: responseStatus, duration: duration, detail: log.detail)
        }
        finishExchange()
    }

    /// SPEC §8: a request made while impersonating is on disk before its response is
    /// returned. The response's last bytes wait here (unflushed) for the writer's fsync.
    private func holdUntilLogged(_ record: AuditRecord) {
        auditHeld = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = exchangeID
        let queued = loop.audit.recordDurably(record) { written in
            bound.eventLoop.execute { bound.value.logged(written, exchange: id) }
        }
        if !queued { logged(false, exchange: id) }
    }

    private func logged(_ written: Bool, exchange id: UInt64) {
        guard auditHeld, id == exchangeID else { return }
        auditHeld = false
        guard state != .closed else { return }
        if written {
            finishExchange()
        } else if !responseBytesSent {
            // Nothing went out yet: answer 503 instead (the record could not be kept).
            pendingOut.clear()
            responseStarted = false
            send(.auditUnavailable(close: true))
        } else {
            forceClose()  // part of the response left already: cut it rather than complete it unlogged
        }
    }

    private func finishExchange() {
        if closeAfterResponse {
            closeAfterFlush()
            return
        }
        flushDownstream()
        state = .awaitingHead
        if inbound.readableBytes > 0 {
            headStartedAt = .now()
        } else {
            idleSince = .now()
        }
        processInbound()
    }

    private func closeAfterFlush() {
        state = .closed
        writePending()
        let context = self.context!
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// An error answer from the proxy itself, in place of a response.
    /// Answers the exchange from the catalogue (ProxyAnswer) and completes it.
    private func send(_ answer: ProxyAnswer, impersonating: ImpersonationRefusalPage? = nil) {
        let status = answer.status
        responseStatus = status
        if state != .exchange, !inFlight {
            inFlight = true
            loop.metrics.inFlight.increment()
        }
        let mustClose = answer.close || !clientKeepAlive || loop.draining || !(requestSent || requestBodyIsEmpty)
        var response = ErrorResponse.make(
            status: status, code: answer.code, message: answer.message, requestID: requestID, html: requestWantsHTML,
            close: mustClose, hstsLine: settings.hstsLine,
            extraHeaders: answer.extraHeaders + (loop.identity.cookieJars.takeRestoration(signIn: exchangeSignIn, live: loop.identity.live) ?? ""),
            extraJSON: answer.extraJSON, impersonating: impersonating,
            allocator: context.channel.allocator)
        pendingOut.writeBuffer(&response)
        responseStarted = true
        closeAfterResponse = mustClose
        abandonUpstream()
        requestBody = .done
        completeExchange()
    }

    private var requestBodyIsEmpty: Bool {
        if case .none = requestBody { return true }
        return false
    }

    /// Gives up the upstream side of the exchange: leaves the pool's queue, or closes the
    /// connection (its state is unknown, so it is never reused).
    private func abandonUpstream() {
        leaveStreamingSlot()
        if let waiterID {
            loop.pool.cancel(waiter: waiterID)
            self.waiterID = nil
        }
        if let upstream {
            self.upstream = nil
            loop.pool.discard(upstream)
        }
    }

    private func upstreamFailed(_ answer: ProxyAnswer) {
        loop.metrics.upstreamErrors.increment()
        abandonUpstream()
        if responseStarted, !dropHeldResponse() {
            forceClose()
        } else {
            send(answer)
        }
    }

    func upstreamClosed() {
        let connection = upstream
        upstream = nil
        switch state {
        case .tunnel:
            closeAfterFlush()
        case .exchange:
            switch responseBody {
            case .untilClose:
                finishRewriting(writeLastChunk: false)
                if downstreamFraming == .chunked { pendingOut.writeStaticString("0\r\n\r\n") }
                finishResponse()
            case .awaitingHead where !upstreamBytesSeen:
                // A reused keep-alive connection the upstream had just closed: safe to retry
                // once when the request had no body (nothing was consumed).
                if attempts == 1, (connection?.uses ?? 0) > 0, !requestHadBody, requestMethod != .post, requestMethod != .patch {
                    requestSent = false
                    requestBody = .none
                    acquireUpstream()
                } else {
                    upstreamFailed(.upstreamClosedSilently)
                }
            case .awaitingHead:
                upstreamFailed(.upstreamClosedMidResponse)
            case .contentLength, .chunked:
                loop.metrics.upstreamErrors.increment()
                forceClose()
            case .done:
                break
            }
        case .awaitingHead, .console, .closed:
            break
        }
    }


    func upstreamWritabilityChanged(_ writable: Bool) {
        if writable {
            if state == .exchange { forwardRequestBody() }
            resumeReadingIfNeeded()
        }
    }

    // MARK: timers and lifecycle

    func checkTimers(now: NIODeadline) {
        let bodyStalled = bodyClock.expired(now: now, waitingForClient: awaitingRequestBody, lastActivity: lastClientActivity, timeout: settings.bodyTimeout)
        switch state {
        case .awaitingHead:
            if let started = headStartedAt, now - started > settings.headerTimeout {
                guard tlsHandshakeDone else {
                    // SPEC §3: header_timeout bounds the TLS handshake too; no HTTP answer is
                    // possible before it, so the connection just closes.
                    loop.metrics.tlsHandshakeTimeouts.increment()
                    forceClose()
                    return
                }
                requestID = loop.nextRequestID()
                requestStart = now
                clientKeepAlive = false
                requestWantsHTML = false
                // SPEC §8: every request — a connection that sent no byte (a preconnect) made none.
                exchangeLog = loop.settings.logAllRequests && inbound.readableBytes > 0 ? ExchangeLog(refused: inbound) : nil
                send(.headTimeout)
            } else if headStartedAt == nil, let idle = idleSince, now - idle > settings.idleTimeout {
                forceClose()
            }
        case .exchange:
            if let deadline = upstreamDeadline, now > deadline {
                upstreamFailed(.upstreamTimeout)
            } else if bodyStalled {
                requestBodyTimedOut()
            }
        case .console:
            if bodyStalled { requestBodyTimedOut() }
        case .tunnel, .closed:
            break
        }
    }

    /// A request body is incomplete and the proxy is reading it (not holding it back).
    private var awaitingRequestBody: Bool {
        guard state == .exchange || state == .console else { return false }
        switch requestBody {
        case .contentLength, .chunked: return wantsClientBytes
        case .none, .done: return false
        }
    }

    /// SPEC §3 `body_timeout`: 408 and close; a response already under way is cut instead.
    private func requestBodyTimedOut() {
        guard !responseStarted || dropHeldResponse() else { return forceClose() }
        send(.bodyTimeout)
    }

    func drain() {
        switch state {
        case .awaitingHead where inbound.readableBytes == 0:
            forceClose()
        default:
            // Busy: the response in progress carries `Connection: close` if not started,
            // and the connection closes after it.
            clientKeepAlive = false
            if state == .exchange || state == .console { closeAfterResponse = true }
        }
    }

    func forceClose() {
        guard state != .closed || context.channel.isActive else { return }
        state = .closed
        context.close(promise: nil)
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
