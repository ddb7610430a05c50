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
        case body(chunked: Bool)
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
    private let limits: HTTPLimits

    init(limits: HTTPLimits) {
        self.limits = DownstreamHandler.responseLimits(limits)
        self.responseParser = HeadParser(kind: .response, limits: self.limits)
    }

    // MARK: the request

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            requestHeaders(context: context, headers.headers, endStream: headers.endStream)
        case .data(let data):
            guard case .body(let chunked) = request, case .byteBuffer(var bytes) = data.data else { return }
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
            case .head(let bytes, let method, let body):
                self.method = method
                switch body {
                case .none: request = .done
                case .contentLength: request = .body(chunked: false)
                case .chunked: request = .body(chunked: true)
                }
                context.fireChannelRead(wrapInboundOut(bytes))
            }
        case .body(let chunked):
            // Trailers (NIOHTTP2 checked they end the stream and carry no pseudo-header). With
            // a content-length there is no HTTP/1.1 place for them: dropped (SPEC §9).
            request = .done
            guard chunked else { return }
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
            context.write(wrapOutboundOut(last), promise: promise)
        } else {
            promise?.succeed()
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

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if case .untilClose = response {
            // The end of a body delimited by the connection's close is the stream's end.
            response = .done
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }
}
