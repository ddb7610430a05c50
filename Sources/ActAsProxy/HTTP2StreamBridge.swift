import ActAsHTTP
import NIOCore
import NIOHPACK
import NIOHTTP2

/// One HTTP/2 stream in front of a DownstreamHandler, so that both protocols run one pipeline
/// (SPEC §10.4: every stream is handled as an HTTP/1.1 request would be). Inbound, the
/// stream's frames become that request's bytes (HTTP2Translation); outbound, the HTTP/1.1
/// response the pipeline writes becomes HEADERS, DATA and trailing HEADERS. A malformed
/// request is a stream error: RST_STREAM PROTOCOL_ERROR, and nothing reaches the pipeline.
///
/// Backpressure needs nothing here: the DownstreamHandler holds `read()` (so the stream's
/// window stays closed) and watches the stream channel's writability (its send window).
final class HTTP2StreamBridge: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum RequestState {
        case awaitingHeaders
        /// `content-length` given: the bytes still to come (nil: a value the codec will refuse).
        case sized(remaining: Int64?)
        case chunked
        case done
        case refused
    }

    private enum ResponseState {
        case head
        case contentLength(remaining: Int64)
        case chunked(ChunkedDecoder)
        case untilClose
        case done
    }

    private var request = RequestState.awaitingHeaders
    private var method = HTTPMethod.get
    private var response = ResponseState.head
    private var responseParser: HeadParser
    private var responseBytes = ByteBuffer()
    /// The last byte of a sized body whose length is reached before END_STREAM: held until the
    /// stream ends, so that a body longer than its `content-length` (a stream error NIOHTTP2
    /// finds only with the next DATA) never completes a request in the pipeline (SPEC §10.4).
    private var heldLastByte: ByteBuffer?
    /// When the last frame written so far has gone out: a close waits for it, or NIOHTTP2
    /// drops frames still waiting for flow-control window and resets the stream.
    private var lastWrite: EventLoopFuture<Void>?
    /// The frame that ends the response, written only with the pipeline's next flush. An
    /// impersonated response's end waits unflushed for its durable log record (SPEC §8), and
    /// NIOHTTP2 flushes a stream on its own (a WINDOW_UPDATE it sends).
    private var heldEnd: (frame: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>)?
    private let limits: HTTPLimits
    /// How long a whole response may wait for the client's flow-control window once the
    /// pipeline closed the stream (`idle_timeout`): a client that never opens its window does
    /// not hold the stream, and so the connection, forever.
    private let sendTimeout: TimeAmount
    /// Called once when the stream ends (HTTP2ConnectionLifecycle's count of open streams).
    private var streamEnded: (() -> Void)?

    init(limits: HTTPLimits, sendTimeout: TimeAmount = .seconds(75), streamEnded: (() -> Void)? = nil) {
        self.sendTimeout = sendTimeout
        self.limits = DownstreamHandler.responseLimits(limits)
        self.responseParser = HeadParser(kind: .response, limits: self.limits)
        self.streamEnded = streamEnded
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Synchronous, unlike closeFuture: a stream reset and a new one in one read must not
        // see the old one still counted.
        streamEnded?()
        streamEnded = nil
        context.fireChannelInactive()
    }

    // MARK: the request

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            requestHeaders(context: context, headers.headers, endStream: headers.endStream)
        case .data(let data):
            guard case .byteBuffer(var bytes) = data.data else { return }
            let chunked: Bool
            switch request {
            case .chunked:
                chunked = true
            case .sized(let remaining):
                chunked = false
                if let remaining {
                    let left = remaining - Int64(bytes.readableBytes)
                    request = .sized(remaining: left)
                    if left == 0, !data.endStream, bytes.readableBytes > 0 {
                        heldLastByte = bytes.getSlice(at: bytes.writerIndex - 1, length: 1)
                        bytes.moveWriterIndex(to: bytes.writerIndex - 1)
                    }
                }
                if data.endStream, var held = heldLastByte {
                    heldLastByte = nil
                    held.writeBuffer(&bytes)
                    bytes = held
                }
            case .awaitingHeaders, .done, .refused:
                return
            }
            if data.endStream { request = .done }
            var out: ByteBuffer
            if chunked {
                out = context.channel.allocator.buffer(capacity: bytes.readableBytes + 24)
                if bytes.readableBytes > 0 {
                    out.writeString(String(bytes.readableBytes, radix: 16))
                    out.writeStaticString("\r\n")
                    out.writeBuffer(&bytes)
                    out.writeStaticString("\r\n")
                }
                if data.endStream { HTTP2Translation.lastChunk(trailers: nil, into: &out) }
            } else {
                out = bytes
            }
            if out.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(out)) }
        default:
            break  // RST_STREAM closes the stream channel; WINDOW_UPDATE and the rest are NIOHTTP2's
        }
    }

    private func requestHeaders(context: ChannelHandlerContext, _ headers: HPACKHeaders, endStream: Bool) {
        switch request {
        case .awaitingHeaders:
            switch HTTP2Translation.request(headers, endStream: endStream, allocator: context.channel.allocator) {
            case .malformed:
                request = .refused
                context.writeAndFlush(wrapOutboundOut(.rstStream(.protocolError)), promise: nil)
                context.close(promise: nil)
            case .head(var bytes, let method, let body):
                self.method = method
                switch body {
                case .none: request = .done
                case .contentLength(let length): request = .sized(remaining: length)
                case .chunked: request = .chunked
                }
                if case .contentLength(0) = body {
                    // No body byte to hold back: the head's own last byte waits for END_STREAM.
                    heldLastByte = bytes.getSlice(at: bytes.writerIndex - 1, length: 1)
                    bytes.moveWriterIndex(to: bytes.writerIndex - 1)
                }
                context.fireChannelRead(wrapInboundOut(bytes))
            }
        case .sized:
            // Trailers (NIOHTTP2 checked they end the stream and carry no pseudo-header). With
            // a content-length there is no HTTP/1.1 place for them: dropped (SPEC §9) and named
            // in the request's log record as on HTTP/1.1; the stream's end releases a held last byte.
            request = .done
            if let held = heldLastByte {
                heldLastByte = nil
                context.fireChannelRead(wrapInboundOut(held))
            }
            // After the last byte: with content-length 0 that byte completes the head, and
            // only then is there a request whose record takes the names.
            if let detail = RequestSanitizer.droppedTrailersDetail(names: headers.map(\.name)) {
                context.fireUserInboundEventTriggered(DroppedRequestTrailers(detail: detail))
            }
        case .chunked:
            request = .done
            var out = context.channel.allocator.buffer(capacity: 256)
            HTTP2Translation.lastChunk(trailers: headers, into: &out)
            context.fireChannelRead(wrapInboundOut(out))
        case .done, .refused:
            break
        }
    }

    // MARK: the response

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        if responseBytes.readableBytes == 0 {
            responseBytes = bytes
        } else {
            responseBytes.writeBuffer(&bytes)
        }
        var last: HTTP2Frame.FramePayload?
        let emit = { (frame: HTTP2Frame.FramePayload) in
            if let previous = last { context.write(self.wrapOutboundOut(previous), promise: nil) }
            last = frame
        }
        do {
            try translateResponse(emit)
        } catch {
            // The pipeline's own response did not parse: never forward a guess.
            promise?.fail(error)
            context.writeAndFlush(wrapOutboundOut(.rstStream(.internalError)), promise: nil)
            context.close(promise: nil)
            return
        }
        if let last {
            let written = context.eventLoop.makePromise(of: Void.self)
            if Self.endsStream(last) {
                heldEnd = (last, written)
            } else {
                context.write(wrapOutboundOut(last), promise: written)
            }
            lastWrite = written.futureResult
            promise.map { written.futureResult.cascade(to: $0) }
        } else if let promise {
            // Nothing of its own to send: done when what came before is.
            if let lastWrite { lastWrite.cascade(to: promise) } else { promise.succeed() }
        }
    }

    private func translateResponse(_ emit: (HTTP2Frame.FramePayload) -> Void) throws {
        while responseBytes.readableBytes > 0 {
            switch response {
            case .head:
                guard let length = try responseParser.parse(responseBytes) else { return }
                let headBytes = responseBytes.readSlice(length: length)!
                let head = try responseParser.finishResponse(headBytes, requestMethod: method)
                responseParser.reset()
                let headers = HTTP2Translation.responseHeaders(head)
                if head.status < 200 {
                    emit(.headers(.init(headers: headers)))  // 100 Continue, 103 Early Hints
                    continue
                }
                switch head.framing {
                case .none, .contentLength(0):
                    response = .done
                    emit(.headers(.init(headers: headers, endStream: true)))
                case .contentLength(let length):
                    response = .contentLength(remaining: length)
                    emit(.headers(.init(headers: headers)))
                case .chunked:
                    response = .chunked(ChunkedDecoder(limits: limits))
                    emit(.headers(.init(headers: headers)))
                case .untilClose:
                    response = .untilClose
                    emit(.headers(.init(headers: headers)))
                }
            case .contentLength(let remaining):
                let take = Int(min(Int64(responseBytes.readableBytes), remaining))
                let slice = responseBytes.readSlice(length: take)!
                let left = remaining - Int64(take)
                response = left == 0 ? .done : .contentLength(remaining: left)
                emit(.data(.init(data: .byteBuffer(slice), endStream: left == 0)))
            case .chunked(var decoder):
                response = .done  // keep the decoder uniquely referenced while it runs
                while let event = try decoder.next(&responseBytes) {
                    switch event {
                    case .data(let slice):
                        emit(.data(.init(data: .byteBuffer(slice))))
                    case .end(let trailers):
                        if let trailers, !trailers.fields.isEmpty {
                            emit(.headers(.init(headers: HTTP2Translation.trailerHeaders(trailers), endStream: true)))
                        } else {
                            emit(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
                        }
                        return
                    }
                }
                response = .chunked(decoder)
                return
            case .untilClose:
                let slice = responseBytes.readSlice(length: responseBytes.readableBytes)!
                emit(.data(.init(data: .byteBuffer(slice))))
            case .done:
                responseBytes.clear()  // nothing may follow a complete response on a stream
            }
        }
    }

    func flush(context: ChannelHandlerContext) {
        if let held = heldEnd {
            heldEnd = nil
            context.write(wrapOutboundOut(held.frame), promise: held.promise)
        }
        context.flush()
    }

    private static func endsStream(_ frame: HTTP2Frame.FramePayload) -> Bool {
        switch frame {
        case .headers(let headers): return headers.endStream
        case .data(let data): return data.endStream
        default: return false
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if let held = heldEnd {
            // Closed before the pipeline flushed the response's end (its log record failed):
            // the stream is cut, never completed.
            heldEnd = nil
            held.promise.fail(ChannelError.ioOnClosedChannel)
            response = .head
        }
        if case .untilClose = response {
            // The end of a body delimited by the connection's close is the stream's end.
            response = .done
            let written = context.eventLoop.makePromise(of: Void.self)
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: written)
            lastWrite = written.futureResult
            context.flush()
        }
        guard case .done = response, let lastWrite else {
            return context.close(mode: mode, promise: promise)  // cut mid-response: RST_STREAM
        }
        // A whole response: let it go out first. A client still sending is told to stop with
        // NO_ERROR (RFC 9113 §8.1), not CANCEL.
        var closed = false
        let cut = context.eventLoop.assumeIsolated().scheduleTask(in: sendTimeout) {
            guard !closed else { return }
            closed = true
            context.close(mode: mode, promise: promise)  // still not sent: RST_STREAM CANCEL
        }
        lastWrite.assumeIsolated().whenComplete { _ in
            guard !closed else { return }
            closed = true
            cut.cancel()
            if case .done = self.request {} else if context.channel.isActive {
                context.writeAndFlush(self.wrapOutboundOut(.rstStream(.noError)), promise: nil)
            }
            context.close(mode: mode, promise: promise)
        }
    }
}

/// Told by the bridge to the stream's pipeline: trailers of a sized request body that had no
/// place upstream; the log record's `detail`.
struct DroppedRequestTrailers {
    let detail: String
}
