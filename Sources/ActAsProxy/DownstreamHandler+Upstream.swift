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

/// The request on its way up: buffering, the upstream connection, the body.
extension DownstreamHandler {
    /// Request buffering (RequestBuffering): an upstream connection is taken once the body is
    /// here, or the buffer is full; until then the client may answer `100 Continue` from here.
    func acquireUpstreamOnceBuffered(expectContinue: Bool = false) {
        guard streamingSlot == .none else { return }  // queued for a slot: reading is paused
        let ready: Bool
        var streaming = false
        switch exchange.requestBody {
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
    func leaveStreamingSlot() {
        if streamingSlot.leave() { loop.releaseStreamingSlot() }
    }

    /// The chunked body of this exchange is all in `inbound` (no more client bytes needed).
    var chunkedBodyBuffered: Bool {
        guard let lookahead = bodyLookahead, lookahead.exchange == exchangeID else { return false }
        return lookahead.scan.complete
    }

    func acquireUpstream() {
        exchange.attempts += 1
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

    func attach(_ connection: UpstreamConnection) {
        // The session may have ended while this request waited for a connection: check again
        // right before the first byte goes out (SPEC §7, "before forwarding").
        if let id = exchange.impersonationID, loop.identity.live.read({ $0.impersonations[id] == nil }) {
            loop.pool.release(connection)
            exchange.impersonationID = nil
            identityMemo = nil
            send(.impersonationEndedBeforeForwarding)
            return
        }
        if let id = exchange.impersonationID, countedSessionID == nil {
            countedSessionID = id
            loop.console.impersonations.activity.begin(id)
        }
        if exchange.log?.upstreamStarted == nil { exchange.log?.upstreamStarted = .now() }
        upstream = connection
        connection.owner = self
        connection.channel.write(exchange.upstreamRequestHead, promise: nil)
        forwardRequestBody()
        connection.channel.flush()
        connection.handler.setPaused(!context.channel.isWritable)
    }

    /// Moves request body bytes from `inbound` to the upstream, re-framing chunked bodies.
    func forwardRequestBody() {
        guard let upstream else {
            if exchange.attempts == 0, state == .exchange { return acquireUpstreamOnceBuffered() }
            resumeReadingIfNeeded()
            return
        }
        var wrote = false
        switch exchange.requestBody {
        case .none:
            exchange.requestBody = .done
            exchange.requestSent = true
        case .done:
            break
        case .contentLength(let remaining):
            let take = Int(min(Int64(inbound.readableBytes), remaining))
            if take > 0 {
                let slice = inbound.readSlice(length: take)!
                exchange.log?.requestBody(slice)
                upstream.channel.write(slice, promise: nil)
                wrote = true
            }
            if remaining - Int64(take) == 0 {
                exchange.requestBody = .done
                exchange.requestSent = true
            } else {
                exchange.requestBody = .contentLength(remaining: remaining - Int64(take))
            }
        case .chunked:
            let outcome = decodeChunkedRequestBody { slice in
                exchange.log?.requestBody(slice)
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
                if let dropped = RequestSanitizer.droppedTrailersDetail(trailers) { exchange.log?.addDetail(dropped) }
                var tail = context.channel.allocator.buffer(capacity: 5)
                tail.writeStaticString("0\r\n\r\n")
                upstream.channel.write(tail, promise: nil)
                wrote = true
                exchange.requestSent = true
            case .needMore, .stopped:
                break
            }
        }
        if wrote {
            upstream.channel.flush()
            upstreamDeadline = .now() + settings.responseTimeout
        }
        if exchange.requestSent { leaveStreamingSlot() }
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
    func decodeChunkedRequestBody(_ onData: (ByteBuffer) -> Bool) -> ChunkedProgress {
        guard case .chunked(var decoder) = exchange.requestBody else { return .needMore }
        // Park the decoder in `.done` while it is mutated, to keep it uniquely referenced.
        exchange.requestBody = .done
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
                exchange.requestBody = .chunked(decoder)
                return .needMore
            }
        }
    }

    func requestBodyFailed(_ error: HTTPParseError) {
        loop.metrics.rejectedRequests.increment()
        abandonUpstream()
        if exchange.responseStarted {
            forceClose()
        } else {
            send(.malformedBody(error))
        }
    }
}
