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

/// The answer on its way down: the upstream's head and body, rewriting, the banner.
extension DownstreamHandler {
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

    func processUpstream(_ buffer: inout ByteBuffer) {
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
                    head = try responseParser.finishResponse(headBytes, requestMethod: exchange.method)
                } catch {
                    upstreamFailed(.upstreamUnsafeResponse)
                    return
                }
                responseParser.reset()
                buffer = upstreamInbound
                upstreamInbound = ByteBuffer()
                if head.status == 101 {
                    guard exchange.isUpgrade else {
                        upstreamFailed(.upstreamUnaskedSwitch)
                        return
                    }
                    // RFC 6455 §4.2.2: a 101 that does not answer this handshake's key is not tunnelled.
                    guard WebSocketAccept.matches(accept: head.block.first("sec-websocket-accept"), key: exchange.webSocketKey) else {
                        upstreamFailed(.upstreamBadWebSocketAccept)
                        return
                    }
                    startTunnel(head, rest: buffer)
                    return
                }
                if head.status < 200 {
                    if !exchange.clientIsHTTP10 {
                        HeaderRewriter.writeInterimResponse(head, into: &pendingOut)
                        flushDownstream()
                    }
                    continue
                }
                startResponse(head)
            case .contentLength(let remaining):
                let take = Int(min(Int64(buffer.readableBytes), remaining))
                if take > 0 { emitBody(buffer.readSlice(length: take)!) }
                guard state == .exchange, !exchange.responseReplaced else { return }
                if remaining == Int64(take) {
                    finishRewriting(writeLastChunk: true)
                    if buffer.readableBytes > 0 { exchange.upstreamReusable = false }
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
                        if exchange.responseReplaced { return }
                    case .end(let trailers):
                        finishRewriting(writeLastChunk: false)
                        if downstreamFraming == .chunked {
                            HeaderRewriter.writeTrailers(trailers, into: &pendingOut)
                        }
                        if buffer.readableBytes > 0 { exchange.upstreamReusable = false }
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
                if buffer.readableBytes > 0 { exchange.upstreamReusable = false }
                return
            }
        }
    }

    func startResponse(_ head: ResponseHead) {
        exchange.responseStatus = head.status
        exchange.responseStarted = true
        if !head.keepAlive { exchange.upstreamReusable = false }
        if exchange.isUpgrade { exchange.upstreamReusable = false }

        var contentLength: Int64 = 0
        var passContentLength = false
        switch head.framing {
        case .none:
            if exchange.method == .head || head.status == 304 {
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
            downstreamFraming = exchange.clientIsHTTP10 ? .close : .chunked
            responseBody = .chunked(ChunkedDecoder(limits: Self.responseLimits(settings.limits)))
        case .untilClose:
            downstreamFraming = exchange.clientIsHTTP10 ? .close : .chunked
            exchange.upstreamReusable = false
            responseBody = .untilClose
        }
        pageRewriter = nil
        exchange.heldResponseHead = nil
        exchange.responseReplaced = false
        if let info = exchange.banner {
            let emptyBody: Bool
            if case .done = responseBody { emptyBody = true } else if case .contentLength(0) = responseBody { emptyBody = true } else { emptyBody = false }
            // What a browser shows as a document: a form POST's answer as much as a GET's.
            let navigation = exchange.isDocumentNavigation
            switch ResponseSanitizer.verdict(head, isHead: exchange.method == .head, emptyBody: emptyBody, navigation: navigation) {
            case .refuse(let why):
                refuseUnrewritable(why, banner: info, code: ResponseSanitizer.unrewritableCode)
                return
            case .rewrite(let coding):
                if let rewriter = try? PageRewriter(banner: ByteBuffer(bytes: Banner.markup(info)), coding: coding,
                                                    maxInflated: settings.maxRewrittenPage, refuseUndecorated: navigation) {
                    // The length changes: chunked (or close-delimited for HTTP/1.0 clients).
                    pageRewriter = rewriter
                    downstreamFraming = exchange.clientIsHTTP10 ? .close : .chunked
                }
            case .pass:
                break
            }
        } else if let notice = exchange.targetNotice {
            startNoticeRewrite(head, notice: notice)
        }
        exchange.closeAfterResponse = !exchange.clientKeepAlive || downstreamFraming == .close || loop.draining
        var facts = HeaderRewriter.ResponseFacts(
            requestID: exchange.requestID, framing: downstreamFraming, contentLength: contentLength,
            close: exchange.closeAfterResponse, http10KeepAlive: exchange.clientIsHTTP10 && !exchange.closeAfterResponse,
            hstsLine: settings.hstsLine, passContentLength: passContentLength && pageRewriter == nil, upgrade: false,
            cookieJar: exchange.cookieJar, cookiePath: exchange.cookiePath)
        facts.restoredCookies = loop.identity.cookieJars.takeRestoration(signIn: exchange.signIn, live: loop.identity.live)
        facts.rewritten = pageRewriter != nil
        facts.nosniff = exchange.impersonationID != nil
        facts.upstreamAddress = settings.upstreamAddress
        facts.publicHost = exchange.upstreamRequestHead.getSlice(at: exchange.upstreamRequestHead.readerIndex + exchange.upstreamHostRange.lowerBound,
                                                        length: exchange.upstreamHostRange.count)
        let notes: HeaderRewriter.ResponseNotes
        if pageRewriter?.releasing == false {
            var held = context.channel.allocator.buffer(capacity: head.block.bytes.readableBytes + 256)
            notes = HeaderRewriter.writeDownstreamResponse(head, facts: facts, into: &held)
            exchange.heldResponseHead = held
        } else {
            notes = HeaderRewriter.writeDownstreamResponse(head, facts: facts, into: &pendingOut)
        }
        for name in notes.refusedCookies {
            loop.console.events.record(ResponseSanitizer.refusedCookieEvent(
                name: name, requestID: exchange.requestID, clientIP: clientIPText, log: exchange.log?.fields, status: head.status))
        }
        if case .done = responseBody { finishResponse() }
    }

    /// SPEC §10.5: the target's HTML page gets the notice through the banner's rewriter. Nothing
    /// is refused for want of a place: the target's own pages are not the impersonation's
    /// safety boundary, so a page that cannot carry it (frameset, UTF-16) goes out as it is.
    private func startNoticeRewrite(_ head: ResponseHead, notice: [UInt8]) {
        let emptyBody: Bool
        if case .done = responseBody { emptyBody = true } else if case .contentLength(0) = responseBody { emptyBody = true } else { emptyBody = false }
        guard case .rewrite(let coding) = ResponseSanitizer.verdict(head, isHead: exchange.method == .head, emptyBody: emptyBody, navigation: false),
              let rewriter = try? PageRewriter(banner: ByteBuffer(bytes: notice), coding: coding, maxInflated: settings.maxRewrittenPage,
                                               refuseUndecorated: false)
        else { return }
        pageRewriter = rewriter
        downstreamFraming = exchange.clientIsHTTP10 ? .close : .chunked
    }

    func startTunnel(_ head: ResponseHead, rest: ByteBuffer) {
        releaseSessionActivity()  // the request was answered; the tunnel is cut at the end instead
        if let log = exchange.log {
            exchange.log = nil
            loop.log(log, requestID: exchange.requestID, clientIP: clientIPText, status: 101,
                     duration: (NIODeadline.now() - exchange.start).nanoseconds)
        }
        exchange.responseStatus = 101
        exchange.responseStarted = true
        let facts = HeaderRewriter.ResponseFacts(
            requestID: exchange.requestID, framing: .none, contentLength: 0, close: false, http10KeepAlive: false,
            hstsLine: settings.hstsLine, passContentLength: false, upgrade: true,
            cookieJar: exchange.cookieJar, cookiePath: exchange.cookiePath)
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
    func emitBody(_ slice: ByteBuffer) {
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
    func finishRewriting(writeLastChunk: Bool) {
        guard var rewriter = pageRewriter else { return }
        pageRewriter = nil
        rewriter.finish(into: &rewriteOutput)
        releaseHeldHead()
        for piece in rewriteOutput { emitFramed(piece) }
        rewriteOutput.removeAll(keepingCapacity: true)
        if writeLastChunk, downstreamFraming == .chunked { pendingOut.writeStaticString("0\r\n\r\n") }
    }

    /// The rewriter let output go: the held head leaves first.
    func releaseHeldHead() {
        guard var head = exchange.heldResponseHead, pageRewriter?.releasing ?? true else { return }
        exchange.heldResponseHead = nil
        pendingOut.writeBuffer(&head)
    }

    /// The page cannot be rewritten after all (SPEC §7, `limits.max_rewritten_page`): answered
    /// in its place when nothing of it left yet, else cut, logged with why either way.
    func rewriteFailed(_ failure: PageRewriter.Failure) {
        pageRewriter = nil
        exchange.responseReplaced = true
        rewriteOutput.removeAll(keepingCapacity: true)
        let detail = failure.detail(limit: settings.maxRewrittenPage)
        if exchange.heldResponseHead != nil, let info = exchange.banner {
            refuseUnrewritable(detail, banner: info, code: failure.code)
            return
        }
        loop.metrics.upstreamErrors.increment()
        if let log = exchange.log {
            exchange.log = nil
            loop.log(log, requestID: exchange.requestID, clientIP: clientIPText, status: exchange.responseStatus,
                     duration: (NIODeadline.now() - exchange.start).nanoseconds, detail: detail)
        }
        abandonUpstream()
        recordCompletion()
        forceClose()
    }

    /// A response whose head is still held (nothing of it sent) is given up, so that an
    /// error can answer in its place. False when part of the response already left.
    func dropHeldResponse() -> Bool {
        // The held head leaves before any body byte does, so nothing of this response left.
        guard exchange.heldResponseHead != nil else { return false }
        exchange.heldResponseHead = nil
        pageRewriter = nil
        rewriteOutput.removeAll(keepingCapacity: true)
        pendingOut.clear()
        responseBody = .done
        exchange.responseStarted = false
        return true
    }

    /// `502` with a page that carries the banner, in place of a document a navigation would
    /// show without it; a `request_denied` event says why.
    func refuseUnrewritable(_ why: String, banner: BannerInfo, code: String) {
        pageRewriter = nil
        exchange.heldResponseHead = nil
        exchange.responseReplaced = true
        responseBody = .done  // what the upstream sends further is dropped with its connection
        exchange.log?.detail = why
        let fields = exchange.log?.fields
        loop.console.events.record(AuditRecord(
            type: .requestDenied, requestID: exchange.requestID.string, clientIP: clientIPText, method: fields?.method, path: fields?.path,
            status: 502, user: fields?.user, impersonator: fields?.impersonator, sessionID: fields?.sessionID, mode: fields?.mode,
            reason: code, detail: why))
        exchange.responseStatus = 502
        let mustClose = !exchange.clientKeepAlive || loop.draining || !(exchange.requestSent || requestBodyIsEmpty)
        var response = ResponseSanitizer.refusal(
            code: code, banner: banner, html: exchange.wantsHTML, requestID: exchange.requestID, hstsLine: settings.hstsLine, close: mustClose,
            allocator: context.channel.allocator)
        pendingOut.writeBuffer(&response)
        exchange.responseStarted = true
        exchange.closeAfterResponse = mustClose
        abandonUpstream()
        exchange.requestBody = .done
        completeExchange()
    }

    func emitFramed(_ slice: ByteBuffer) {
        exchange.log?.fields.bytesOut += Int64(slice.readableBytes)
        if downstreamFraming == .chunked {
            ChunkedEncoding.writeChunkHeader(slice.readableBytes, into: &pendingOut)
            emit(slice)
            ChunkedEncoding.writeCRLF(into: &pendingOut)
        } else {
            emit(slice)
        }
    }

    func emit(_ buffer: ByteBuffer) {
        if buffer.readableBytes <= Self.coalesceLimit {
            var buffer = buffer
            pendingOut.writeBuffer(&buffer)
        } else {
            writePending()
            exchange.responseBytesSent = true
            context.write(wrapOutboundOut(buffer), promise: nil)
        }
    }

    func writePending() {
        guard pendingOut.readableBytes > 0, !auditHeld else { return }
        context.write(wrapOutboundOut(pendingOut), promise: nil)
        pendingOut.clear()
    }

    func flushDownstream() {
        guard !auditHeld else { return }
        writePending()
        if exchange.responseStarted { exchange.responseBytesSent = true }
        context.flush()
    }

    func finishResponse() {
        responseBody = .done
        // One reading of the clock ends the upstream time, the metrics and the log's duration.
        let now = NIODeadline.now()
        if let started = exchange.log?.upstreamStarted { exchange.log?.fields.upstreamNanoseconds = (now - started).nanoseconds }
        // Give the connection back before the last write: that write can synchronously
        // deliver the next pipelined request, which may want a connection at once.
        if let upstream {
            self.upstream = nil
            if exchange.requestSent, exchange.upstreamReusable {
                loop.pool.release(upstream)
            } else {
                loop.pool.discard(upstream)
            }
        }
        if !exchange.requestSent {
            // The upstream answered before the body was complete; the rest of the body
            // is still coming and cannot be told apart from a next request.
            exchange.closeAfterResponse = true
        }
        completeExchange(now: now)
    }

    func recordCompletion(now: NIODeadline = .now()) {
        guard inFlight else { return }
        inFlight = false
        loop.metrics.inFlight.decrement()
        let elapsed = now - exchange.start
        loop.metrics.recordResponse(status: exchange.responseStatus, nanoseconds: elapsed.nanoseconds)
    }

    /// The exchange no longer counts as in flight for its impersonation session.
    func releaseSessionActivity() {
        if let id = countedSessionID {
            countedSessionID = nil
            loop.console.impersonations.activity.end(id)
        }
    }
}
