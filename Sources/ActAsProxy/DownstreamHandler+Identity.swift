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

/// Who is asking, and the impersonation gate's effects: the identity memo, ended sessions, refusals.
extension DownstreamHandler {
    // MARK: identity

    typealias Identified = RequestPipeline.Identified
    typealias IdentityResult = Identified?

    struct InvalidToken: Error {}

    /// Who is asking: from the connection's memo when nothing changed, else from the live
    /// state. An `actas_` bearer token that does not resolve is an error (401); a session
    /// cookie that does not resolve just means "not signed in".
    ///
    /// SPEC §10.3 mTLS: on a connection with a client certificate, only credentials of the
    /// certificate's user count; the request otherwise acts through the session the connection
    /// signed in (ClientCertificateHandler), or is not signed in. A stolen cookie or token is
    /// then no use with someone else's certificate, and a stolen certificate cannot be steered
    /// to another account by a cookie.
    func resolveIdentity(_ head: RequestHead, _ credentials: RequestCredentials, host: [UInt8]?, now: Date) throws -> IdentityResult {
        guard let certificate = try? context.pipeline.syncOperations.handler(type: ClientCertificateHandler.self) else {
            return try resolveCredentialIdentity(head, credentials, host: host, now: now)
        }
        let found = try? resolveCredentialIdentity(head, credentials, host: host, now: now)
        if let found, let userID = certificate.certificateUserID, found.memo.principal.user.id == userID { return found }
        guard let session = certificate.connectionSession else { return nil }
        let identified = try? session.withUnsafeBytes { cookie in
            try identify(credential: cookie, authentication: .session, head: head, host: host, now: now)
        }
        return identified?.memo.principal.user.id == certificate.certificateUserID ? identified : nil
    }

    func resolveCredentialIdentity(_ head: RequestHead, _ credentials: RequestCredentials, host: [UInt8]?, now: Date) throws -> IdentityResult {
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
        return try head.block.withUnsafeBytes { raw in
            try identify(credential: UnsafeRawBufferPointer(rebasing: raw[range]), authentication: authentication, head: head, host: host, now: now)
        }
    }

    /// The principal a credential (cookie value or token) names, through the memo.
    func identify(credential: UnsafeRawBufferPointer, authentication: ConsoleRequest.Authentication, head: RequestHead,
                  host: [UInt8]?, now: Date) throws -> IdentityResult {
        let live = loop.identity.live
        let generation = live.generation
        let whole = 0..<credential.count
        return try head.block.withUnsafeBytes { raw -> IdentityResult in
            let hostRange = host == nil ? head.hostIndex.map { head.block.fields[$0].valueRange } : nil
            if let memo = identityMemo, memo.matches(credential, whole, generation: generation, now: now),
               settings.assertionIssuer != nil || Self.sameHost(memo.issuerHost, raw, hostRange, host) {
                return Identified(memo: memo, authentication: authentication)
            }
            identityMemo = nil
            let hash = Secrets.hash(credential)
            var principal = authentication == .token ? live.principal(tokenHash: hash) : live.principal(sessionHash: hash, now: now)
            // SPEC §7: an impersonation that must end ends here, before anything is forwarded.
            if let current = principal, let session = current.impersonation,
               let reason = loop.console.impersonations.endReason(current, now: now) {
                loop.console.impersonations.end(session.id, reason: reason, context: EventContext(requestID: exchange.requestID.string, clientIP: clientIPString), now: now)
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
                credential: Array(credential), generation: generation, principal: principal, forwarded: forwarded,
                issuerHost: issuerHost, expiresAt: expiresAt)
            identityMemo = memo
            return Identified(memo: memo, authentication: authentication)
        }
    }

    var clientIPString: String { String(decoding: clientAddress, as: UTF8.self) }

    /// SPEC §8 for a request refused before it was identified: where it went (the target as
    /// written) and who sent it — looked up only, no session is ended and nothing is minted.
    func noteRefused(_ head: RequestHead, _ credentials: RequestCredentials) {
        guard exchange.log != nil else { return }
        let target = RequestTarget(head: head, override: nil)
        exchange.log?.fields.path = target.path
        exchange.log?.fields.query = target.queryIfAny
        if let range = credentials.clientRequestID { exchange.log?.fields.clientRequestID = head.block.string(range) }
        guard let range = credentials.bearerToken ?? credentials.sessionCookie, !range.isEmpty else { return }
        let live = loop.identity.live
        let hash = head.block.withUnsafeBytes { Secrets.hash(UnsafeRawBufferPointer(rebasing: $0[range])) }
        let found = credentials.bearerToken != nil ? live.principal(tokenHash: hash) : live.principal(sessionHash: hash, now: Date())
        guard let principal = found else { return }
        let actingAs = principal.impersonation == nil ? nil : principal.target
        exchange.log?.fields.user = (actingAs ?? principal.user).username
        exchange.log?.fields.impersonator = actingAs == nil ? nil : principal.user.username
        exchange.log?.fields.sessionID = principal.impersonation?.id  // SPEC §8: as the session's other records
        exchange.log?.fields.mode = principal.impersonation?.mode
    }

    // MARK: impersonation

    /// SPEC §7 for a request made while impersonating: the normalised path is checked and is
    /// what is forwarded; hidden paths and (read-only) unsafe methods, method overrides and
    /// upgrades are refused; the application's cookies come from the session's own jar.
    /// Returns false when the request was refused.
    func applyImpersonationRules(
        _ head: RequestHead, target: RequestTarget, session: ImpersonationSession, principal: LiveState.Principal,
        facts: inout HeaderRewriter.RequestFacts
    ) -> Bool {
        if exchange.log == nil {
            exchange.log = ExchangeLog(method: head.methodString, path: target.path, query: target.queryIfAny, proto: proto)
            exchange.log?.fields.clientRequestID = head.block.first("x-request-id")
        }
        // Logged as the administrator acting as the target, durably, with headers and body.
        exchange.log?.fields.user = principal.target?.username
        exchange.log?.fields.impersonator = principal.user.username
        exchange.log?.fields.sessionID = session.id
        exchange.log?.fields.mode = session.mode
        exchange.log?.headers = head.block.pairs.map { AuditHeader($0.0, $0.1) }
        if !requestBodyIsEmpty {
            // Types the redactor cannot parse are not kept at all: only their size and type.
            let contentType = head.block.first("content-type")
            let keep = ExchangeLog.capturable(contentType) ? loop.audit.captureBytes : 0
            exchange.log?.contentType = contentType
            exchange.log?.contentEncoding = head.block.first("content-encoding")
            exchange.log?.captureLimit = keep
            exchange.log?.capture = context.channel.allocator.buffer(capacity: min(keep, 16 * 1024))
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
        exchange.log?.fields.path = pathString
        switch RequestPipeline.impersonationGate(
            path: path, head: head, mode: session.mode, isUpgrade: exchange.isUpgrade, auditHealthy: loop.audit.isHealthy, settings: settings) {
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
        jar.noteBrowserCookies(CookiePassThrough.browserCookies(values: head.block.values("cookie")))
        facts.impersonationCookies = jar.header(for: pathString, now: Date()) ?? ""
        facts.narrowAcceptEncoding = true
        if RequestPipeline.isPageLoad(head), let targetUser = principal.target {
            exchange.banner = BannerInfo(
                targetName: targetUser.displayName, targetUsername: targetUser.username, mode: session.mode, sessionID: session.id,
                startedAt: session.startedAt, expiresAt: session.expiresAt, now: Date(), warnBeforeEnd: settings.warnBeforeEnd,
                csrfToken: principal.session?.csrfToken ?? "", path: target.originForm,
                extendable: session.expiresAt < min(session.startedAt.addingTimeInterval(settings.maxImpersonation),
                                                    principal.targetConsent?.expiresAt ?? .distantFuture))
        }
        exchange.cookieJar = jar
        exchange.cookiePath = pathString
        exchange.impersonationID = session.id
        return true
    }

    /// SPEC §10.5: a page load of someone being acted as carries the notice; the upstream is
    /// then asked only for encodings the rewriter can decode, as while impersonating.
    func noteTargetNotice(_ head: RequestHead, _ identity: IdentityResult, target: RequestTarget, facts: inout HeaderRewriter.RequestFacts) {
        guard let memo = identity?.memo, !memo.principal.actingAsMe.isEmpty else { return }
        let notices = RequestPipeline.targetNotices(
            memo.principal, impersonating: memo.impersonating, pageLoad: RequestPipeline.isPageLoad(head), now: Date())
        guard !notices.isEmpty else { return }
        facts.narrowAcceptEncoding = true
        exchange.targetNotice = TargetNotice.markup(notices, csrfToken: memo.principal.session?.csrfToken ?? "", path: target.originForm)
    }

    func deny(_ refusal: RequestRefusal, head: RequestHead, path: String, session: ImpersonationSession, principal: LiveState.Principal) {
        loop.console.events.record(AuditRecord(
            type: .requestDenied, requestID: exchange.requestID.string, clientIP: clientIPString, method: head.methodString, path: path,
            status: refusal.httpStatus, user: principal.target?.username, impersonator: principal.user.username,
            sessionID: session.id, mode: session.mode, reason: refusal.code))
        let page = exchange.wantsHTML ? ImpersonationRefusalPage(
            session: session, principal: principal, settings: settings, referer: head.block.first("referer"),
            host: head.block.first("host"), current: head.method == .get || head.method == .head ? path : nil) : nil
        send(.refusal(refusal), impersonating: page)
    }

    /// SPEC §7: the first request after an announced end is not forwarded. Navigations go to
    /// the page that says why; everything else gets `403 impersonation_ended`.
    func announceEnd(_ session: ImpersonationSession, head: RequestHead) {
        loop.console.impersonations.noticeShown(session)
        identityMemo = nil
        let notice = RequestPipeline.endNotice(session, head: head)
        if let html = notice.html { exchange.wantsHTML = html }  // SPEC §7: JSON for everything that is not a navigation
        send(notice.answer)
    }

    /// Called by the loop's sweep: an exchange or tunnel forwarded under a session that has
    /// since ended is cut — WebSockets get close code 1008 (policy violation).
    func checkImpersonation(live: LiveState) {
        guard let id = exchange.impersonationID, state == .exchange || state == .tunnel else { return }
        guard live.read({ $0.impersonations[id] == nil }) else { return }
        exchange.impersonationID = nil
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
}
