import ActAsAudit
import ActAsCore
import ActAsCrypto
import ActAsHTTP
import ActAsPages
import ActAsStore
import Foundation
import NIOCore
import NIOSSL
import NIOTLS

/// SPEC §10.3 mTLS, per connection of a listener with `"mtls"` sign-in: sits between TLS and
/// the DownstreamHandler. Without a client certificate it leaves the pipeline at the end of the
/// handshake. With one, it holds the connection's first request until it knows whether that
/// request has a session of the certificate's user; if not, it signs that user in (through the
/// directory, as a password sign-in does) before letting the request on, and puts the session
/// cookie on the first response. A certificate of no one who may sign in gets 403 and the
/// connection closes. Later requests reach the identity stage, which reads `certificateUserID`
/// and `connectionSession` (DownstreamHandler+Identity).
final class ClientCertificateHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Settings: Sendable {
        var directory: Directory
        var sessions: CertificateSessions
        var rule: ClientCertificateIdentity.Rule
        var sessionTTL: TimeInterval
    }

    enum Phase {
        case handshake
        /// Holding the first request's bytes until its head is complete.
        case firstHead
        case signingIn
        case passing
        case refused
    }

    unowned let loop: LoopContext
    let settings: Settings
    private var phase = Phase.handshake
    private var held = ByteBuffer()
    private var readHeld = false
    private var certificate: ClientCertificateIdentity?
    private var clientIP = "unknown"
    /// When the first request's first bytes arrived (its `request` record's duration).
    private var firstBytesAt: NIODeadline?

    /// The certificate's user, once known (its sign-in, or a session of its own it came with).
    private(set) var certificateUserID: String?
    /// The session this connection signed in (its cookie value): requests on the connection
    /// without a session of the certificate's user act through it.
    private(set) var connectionSession: [UInt8]?
    /// Answers 503 if the sign-in takes longer than `CertificateSessions.patience`.
    private var signInTimeout: Scheduled<Void>?
    /// The trailers an HTTP/2 stream dropped while its request waits here.
    private var heldTrailers: DroppedRequestTrailers?
    /// `Set-Cookie` line still due on the first response.
    private var setCookie: String?

    /// The protocol of the requests it reads (for their log records).
    private let proto: ClientProtocol

    init(loop: LoopContext, settings: Settings) {
        self.loop = loop
        self.settings = settings
        self.proto = .http1
    }

    /// On an HTTP/2 stream of a connection that presented `certificate` (DER): the stream's
    /// request is read as a connection's first one (HTTP2Connection puts this after the bridge).
    init(loop: LoopContext, settings: Settings, streamCertificate certificate: [UInt8]) {
        self.loop = loop
        self.settings = settings
        self.proto = .h2
        self.certificate = ClientCertificateIdentity(der: certificate, rule: settings.rule)
        self.phase = .firstHead
    }

    // MARK: inbound

    func channelActive(context: ChannelHandlerContext) {
        if let address = context.channel.remoteAddress?.ipAddress { clientIP = address }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let dropped = event as? DroppedRequestTrailers, phase == .firstHead || phase == .signingIn {
            heldTrailers = dropped  // the request's bytes are held here too
            return
        }
        if phase == .handshake, let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
            if let der = try? handler?.peerCertificate?.toDERBytes() {
                certificate = ClientCertificateIdentity(der: der, rule: settings.rule)
                phase = .firstHead
            } else {
                // No certificate: this connection signs in some other way.
                phase = .passing
                context.fireUserInboundEventTriggered(event)
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch phase {
        case .passing, .handshake:
            context.fireChannelRead(data)
        case .refused:
            return
        case .signingIn:
            var buffer = unwrapInboundIn(data)
            held.writeBuffer(&buffer)
        case .firstHead:
            var buffer = unwrapInboundIn(data)
            if firstBytesAt == nil { firstBytesAt = .now() }
            held.writeBuffer(&buffer)
            firstHeadProgress(context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        // While signing in, the client's bytes wait in the socket, not here.
        if phase == .signingIn {
            readHeld = true
            return
        }
        context.read()
    }

    private func firstHeadProgress(context: ChannelHandlerContext) {
        let limits = loop.settings.limits
        var parser = HeadParser(kind: .request, limits: limits)
        let head: RequestHead
        do {
            guard let length = try parser.parse(held) else { return }
            head = try parser.finishRequest(held.getSlice(at: held.readerIndex, length: length)!)
        } catch {
            // The codec will refuse it and close: nothing to sign in for.
            return pass(context: context)
        }
        guard let certificate else { return pass(context: context) }
        let username: String
        switch certificate.username {
        case .failure(let problem):
            return refuse(context: context, head: head, reason: "no_username", username: nil,
                          message: "The client certificate names no user (\(Self.describe(problem, rule: settings.rule))).")
        case .success(let name):
            username = name
        }
        if let own = ownSession(head, username: username) {
            certificateUserID = own
            return pass(context: context)
        }
        if let (cookie, userID) = earlierSession(certificate.sha256, username: username) {
            adopt(cookie, userID: userID)
            return pass(context: context)
        }
        signIn(context: context, head: head, username: username)
    }

    /// The live session this certificate signed in on an earlier connection, and its user's id.
    /// Never one that is impersonating (or has an end notice due): a cookie-less connection
    /// (a script, a cross-site POST the browser sent without its SameSite cookie) must go on
    /// as the certificate's user, not as whoever that session is acting as (SPEC §7: another
    /// script of the same administrator browses as themselves). It signs in anew instead.
    private func earlierSession(_ sha256: String, username: String) -> ([UInt8], String)? {
        guard let cookie = settings.sessions.cookie(for: sha256) else { return nil }
        let principal = cookie.withUnsafeBytes { loop.identity.live.principal(sessionHash: Secrets.hash($0), now: Date()) }
        guard let principal, principal.user.username == username else {
            settings.sessions.forget(sha256)  // signed out, expired, or the user renamed
            return nil
        }
        guard principal.impersonation == nil, principal.pendingNotice == nil else { return nil }
        return (cookie, principal.user.id)
    }

    /// This connection acts through the session `cookie`, and its first answer sets it.
    private func adopt(_ cookie: [UInt8], userID: String) {
        certificateUserID = userID
        connectionSession = cookie
        let value = String(decoding: cookie, as: UTF8.self)
        setCookie = "Set-Cookie: \(ActAsCookies.session)=\(value); Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=\(Int(settings.sessionTTL))\r\n"
    }

    /// The id of the certificate's user when the request already carries a live session (or
    /// token) of theirs: no new sign-in then.
    private func ownSession(_ head: RequestHead, username: String) -> String? {
        let credentials = RequestCredentials.scan(head.block)
        guard let range = credentials.sessionCookie ?? credentials.bearerToken, !range.isEmpty else { return nil }
        let live = loop.identity.live
        let hash = head.block.withUnsafeBytes { Secrets.hash(UnsafeRawBufferPointer(rebasing: $0[range])) }
        let principal = credentials.sessionCookie != nil ? live.principal(sessionHash: hash, now: Date()) : live.principal(tokenHash: hash)
        guard let principal, principal.user.username == username else { return nil }
        return principal.user.id
    }

    private func signIn(context: ChannelHandlerContext, head: RequestHead, username: String) {
        phase = .signingIn
        guard let sha256 = certificate?.sha256 else { return pass(context: context) }
        let settings = self.settings
        let clientIP = self.clientIP
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let wantsHTML = RequestPipeline.acceptsHTML(head.block)
        let deliver = { @Sendable (result: CertificateSessions.SignInResult, signedInHere: Bool) in
            bound.eventLoop.execute {
                bound.value.signedIn(result, context: boundContext.value, username: username, wantsHTML: wantsHTML, signedInHere: signedInHere)
            }
        }
        // Not for ever: a hung sign-in (its own or the one it waits for) answers 503 after the
        // patience; a result that comes later finds the request answered.
        signInTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: CertificateSessions.patience) {
            bound.value.signedIn(.failure(SignInWaitExpired()), context: boundContext.value, username: username,
                                 wantsHTML: wantsHTML, signedInHere: false)
        }
        switch settings.sessions.startSignIn(sha256, username: username, orWait: { deliver($0, false) }) {
        case .wait:
            break
        case .lead(let token):
            Task {
                let result: CertificateSessions.SignInResult
                do {
                    result = .success(try await settings.directory.signIn(
                        certificateUsername: username, clientIP: clientIP, ttl: settings.sessionTTL))
                } catch {
                    result = .failure(error)
                }
                settings.sessions.finishSignIn(sha256, username: username, token: token, result)
                deliver(result, true)
            }
        }
    }

    /// `signedInHere`: this connection ran the sign-in (and records its `login` event); others
    /// with the same certificate waited for it and act through the same session.
    private func signedIn(_ result: CertificateSessions.SignInResult, context: ChannelHandlerContext,
                          username: String, wantsHTML: Bool, signedInHere: Bool) {
        if signedInHere, case .success(.signedIn(let user, _, _)) = result {
            // Written even when the client left meanwhile: the session exists in the store.
            loop.console.events.record(AuditRecord(
                type: .login, clientIP: clientIP, method: "mtls", user: user.username, authMethod: "mtls",
                extra: [AuditField("cert_sha256", .string(certificate?.sha256 ?? ""))]))
        }
        guard phase == .signingIn, context.channel.isActive else { return }
        signInTimeout?.cancel()
        signInTimeout = nil
        switch result {
        case .success(.signedIn(let user, let cookieValue, _)):
            adopt(Array(cookieValue.utf8), userID: user.id)
            pass(context: context)
        case .success(.unknownUser):
            refuse(context: context, wantsHTML: wantsHTML, reason: "unknown_user", username: username,
                   message: "No user \(username) may sign in with this certificate.")
        case .success(.notAllowed(let user)):
            refuse(context: context, wantsHTML: wantsHTML, reason: "user_suspended", username: user.username,
                   message: "This account is \(user.status.rawValue) and cannot sign in. Ask an administrator.")
        case .failure:
            // The store is down: the same answer the data path gives then (SPEC §9).
            phase = .refused
            let answer = ErrorResponse.make(
                status: 503, code: "store_unavailable", message: "The sign-in cannot be recorded right now; try again shortly.",
                requestID: loop.nextRequestID(), html: wantsHTML, close: true, hstsLine: loop.settings.hstsLine,
                allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(answer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func refuse(context: ChannelHandlerContext, head: RequestHead, reason: String, username: String?, message: String) {
        refuse(context: context, wantsHTML: RequestPipeline.acceptsHTML(head.block), reason: reason, username: username, message: message)
    }

    /// SPEC §10.3: 403, a `login_failed` event, and the connection closes (its certificate
    /// will not do better on the next request). SPEC §8: the refused request has its `request`
    /// record too, from its request line (nothing reached the upstream).
    private func refuse(context: ChannelHandlerContext, wantsHTML: Bool, reason: String, username: String?, message: String) {
        phase = .refused
        var log = ExchangeLog(refused: held, proto: proto)
        held.clear()
        let requestID = loop.nextRequestID()
        loop.console.events.record(AuditRecord(
            type: .loginFailed, requestID: requestID.string, clientIP: clientIP, reason: reason, target: username, authMethod: "mtls",
            extra: [AuditField("cert_sha256", .string(certificate?.sha256 ?? ""))]))
        let answer = ErrorResponse.make(
            status: 403, code: reason, message: message, requestID: requestID, html: wantsHTML, close: true,
            hstsLine: loop.settings.hstsLine, allocator: context.channel.allocator)
        log.fields.bytesOut = Int64(answer.readableBytes)
        let duration = firstBytesAt.map { (NIODeadline.now() - $0).nanoseconds } ?? 0
        loop.console.events.record(log.record(requestID: requestID, clientIP: clientIP, status: 403, duration: duration,
                                              detail: "client certificate refused: \(reason)"))
        context.writeAndFlush(wrapOutboundOut(answer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        // On HTTP/2 the connection's certificate will not do better on another stream: no
        // more streams (GOAWAY), as an HTTP/1.1 connection closes.
        if proto == .h2, let parent = context.channel.parent,
           let connection = try? parent.pipeline.syncOperations.handler(type: HTTP2ConnectionLifecycle.self) {
            connection.drain()
        }
    }

    /// From here on the connection's bytes go straight through.
    private func pass(context: ChannelHandlerContext) {
        phase = .passing
        if held.readableBytes > 0 {
            let bytes = held
            held = ByteBuffer()
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        if let dropped = heldTrailers {
            heldTrailers = nil
            context.fireUserInboundEventTriggered(dropped)  // after the request it belongs to
        }
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    static func describe(_ problem: ClientCertificateIdentity.Problem, rule: ClientCertificateIdentity.Rule) -> String {
        switch problem {
        case .missing: return "it has no \(rule.rawValue) name"
        case .invalid(let name): return "\"\(name)\" is not a valid username"
        case .unparseable: return "it cannot be read"
        }
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let line = setCookie else { return context.write(data, promise: promise) }
        let buffer = unwrapOutboundIn(data)
        switch ResponseHeadInsertion.insert(line, into: buffer) {
        case .inserted(let changed):
            setCookie = nil
            context.write(wrapOutboundOut(changed), promise: promise)
        case .notYet:
            context.write(data, promise: promise)
        case .never:
            setCookie = nil
            context.write(data, promise: promise)
        }
    }
}

/// The certificate's sign-in (run here or waited for) took longer than `CertificateSessions.patience`.
struct SignInWaitExpired: Error {}
