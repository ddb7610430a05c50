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

/// The end of an exchange: the log record, the proxy's own answers, upstream failures, timers.
extension DownstreamHandler {
    func completeExchange(now: NIODeadline = .now()) {
        leaveStreamingSlot()
        releaseSessionActivity()
        recordCompletion(now: now)
        upstreamDeadline = nil
        exchange.impersonationID = nil
        exchange.cookieJar = nil
        if let log = exchange.log {
            exchange.log = nil
            let duration = (now - exchange.start).nanoseconds
            if log.durable {
                holdUntilLogged(log.record(requestID: exchange.requestID, clientIP: clientIPText, status: exchange.responseStatus, duration: duration))
                return
            }
            loop.log(log, requestID: exchange.requestID, clientIP: clientIPText, status: exchange.responseStatus, duration: duration, detail: log.detail)
        }
        finishExchange()
    }

    /// SPEC §8: a request made while impersonating is on disk before its response is
    /// returned. The response's last bytes wait here (unflushed) for the writer's fsync.
    func holdUntilLogged(_ record: AuditRecord) {
        auditHeld = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = exchangeID
        let queued = loop.audit.recordDurably(record) { written in
            bound.eventLoop.execute { bound.value.logged(written, exchange: id) }
        }
        if !queued { logged(false, exchange: id) }
    }

    func logged(_ written: Bool, exchange id: UInt64) {
        guard auditHeld, id == exchangeID else { return }
        auditHeld = false
        guard state != .closed else { return }
        if written {
            finishExchange()
        } else if !exchange.responseBytesSent {
            // Nothing went out yet: answer 503 instead (the record could not be kept).
            pendingOut.clear()
            exchange.responseStarted = false
            send(.auditUnavailable(close: true))
        } else {
            forceClose()  // part of the response left already: cut it rather than complete it unlogged
        }
    }

    func finishExchange() {
        if exchange.closeAfterResponse {
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

    func closeAfterFlush() {
        state = .closed
        writePending()
        let context = self.context!
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Answers the exchange from the catalogue (ProxyAnswer) and completes it.
    func send(_ answer: ProxyAnswer, impersonating: ImpersonationRefusalPage? = nil) {
        let status = answer.status
        exchange.responseStatus = status
        if state != .exchange, !inFlight {
            inFlight = true
            loop.metrics.inFlight.increment()
        }
        let mustClose = answer.close || !exchange.clientKeepAlive || loop.draining || !(exchange.requestSent || requestBodyIsEmpty)
        var response = ErrorResponse.make(
            status: status, code: answer.code, message: answer.message, requestID: exchange.requestID, html: exchange.wantsHTML,
            close: mustClose, hstsLine: settings.hstsLine,
            extraHeaders: answer.extraHeaders + (loop.identity.cookieJars.takeRestoration(signIn: exchange.signIn, live: loop.identity.live) ?? ""),
            extraJSON: answer.extraJSON, impersonating: impersonating,
            allocator: context.channel.allocator)
        pendingOut.writeBuffer(&response)
        exchange.responseStarted = true
        exchange.closeAfterResponse = mustClose
        abandonUpstream()
        exchange.requestBody = .done
        completeExchange()
    }

    var requestBodyIsEmpty: Bool {
        if case .none = exchange.requestBody { return true }
        return false
    }

    /// Gives up the upstream side of the exchange: leaves the pool's queue, or closes the
    /// connection (its state is unknown, so it is never reused).
    func abandonUpstream() {
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

    func upstreamFailed(_ answer: ProxyAnswer) {
        loop.metrics.upstreamErrors.increment()
        abandonUpstream()
        if exchange.responseStarted, !dropHeldResponse() {
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
                if exchange.attempts == 1, (connection?.uses ?? 0) > 0, !exchange.requestHadBody, exchange.method != .post, exchange.method != .patch {
                    exchange.requestSent = false
                    exchange.requestBody = .none
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
        let bodyStalled = exchange.bodyClock.expired(now: now, waitingForClient: awaitingRequestBody, lastActivity: lastClientActivity, timeout: settings.bodyTimeout)
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
                exchange = Exchange(requestID: loop.nextRequestID(), start: now)
                exchange.clientKeepAlive = false
                // SPEC §8: every request — a connection that sent no byte (a preconnect) made none.
                exchange.log = loop.settings.logAllRequests && inbound.readableBytes > 0 ? ExchangeLog(refused: inbound, proto: proto) : nil
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
    var awaitingRequestBody: Bool {
        guard state == .exchange || state == .console else { return false }
        switch exchange.requestBody {
        case .contentLength, .chunked: return wantsClientBytes
        case .none, .done: return false
        }
    }

    /// SPEC §3 `body_timeout`: 408 and close; a response already under way is cut instead.
    func requestBodyTimedOut() {
        guard !exchange.responseStarted || dropHeldResponse() else { return forceClose() }
        send(.bodyTimeout)
    }

    func drain() {
        switch state {
        case .awaitingHead where inbound.readableBytes == 0:
            forceClose()
        default:
            // An HTTP/2 stream is one exchange: its connection's GOAWAY does the draining.
            guard proto == .http1 else { return }
            // Busy: the response in progress carries `Connection: close` if not started,
            // and the connection closes after it.
            exchange.clientKeepAlive = false
            if state == .exchange || state == .console { exchange.closeAfterResponse = true }
        }
    }

    func forceClose() {
        guard state != .closed || context.channel.isActive else { return }
        state = .closed
        context.close(promise: nil)
    }
}
