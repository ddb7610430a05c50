import ActAsHTTP
import NIOCore

/// A minimal request/response handler for the admin and redirect listeners: the same strict
/// parser, one short answer per request, no bodies accepted.
final class SmallHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Response {
        var status: Int
        var reason: String
        var contentType: String
        var body: String
        var headers: String = ""
        var close = false
    }

    /// An answer now, or one that needs the store first (`POST /sync` on the admin listener).
    enum Reply {
        case now(Response)
        case later(EventLoopFuture<Response>)
    }

    private var parser = HeadParser(kind: .request, limits: HTTPLimits(maxRequestLine: 4096, maxHeaderBytes: 16384, maxHeaders: 64, maxBody: 0))
    private var inbound = ByteBuffer()
    private let respond: (RequestHead, any EventLoop) -> Reply
    /// A later reply is pending: further requests wait so answers keep their order.
    private var waiting = false

    init(respond: @escaping (RequestHead) -> Response) {
        self.respond = { head, _ in .now(respond(head)) }
    }

    init(reply: @escaping (RequestHead, any EventLoop) -> Reply) {
        self.respond = reply
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        inbound.writeBuffer(&buffer)
        process(context)
    }

    private func process(_ context: ChannelHandlerContext) {
        while !waiting, inbound.readableBytes > 0 {
            let head: RequestHead
            do {
                guard let length = try parser.parse(inbound) else { return }
                head = try parser.finishRequest(inbound.readSlice(length: length)!)
                parser.reset()
            } catch {
                write(context, Response(status: error.status, reason: ErrorResponse.reasonPhrase(error.status), contentType: "text/plain", body: "\(error.reason)\n", close: true))
                return
            }
            guard head.framing == .none else {
                write(context, Response(status: 413, reason: "Content Too Large", contentType: "text/plain", body: "no request bodies here\n", close: true))
                return
            }
            switch respond(head, context.eventLoop) {
            case .now(var response):
                if !head.keepAlive { response.close = true }
                write(context, response)
                if response.close { return }
            case .later(let future):
                waiting = true
                let keepAlive = head.keepAlive
                future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                    var response = (try? result.get())
                        ?? Response(status: 500, reason: "Internal Server Error", contentType: "text/plain", body: "failed\n", close: true)
                    if !keepAlive { response.close = true }
                    self.waiting = false
                    self.write(context, response)
                    if !response.close { self.process(context) }
                }
                return
            }
        }
        inbound.discardReadBytes()
    }

    private func write(_ context: ChannelHandlerContext, _ response: Response) {
        var out = context.channel.allocator.buffer(capacity: 256 + response.body.utf8.count)
        out.writeString("HTTP/1.1 \(response.status) \(response.reason)\r\nContent-Type: \(response.contentType)\r\nContent-Length: \(response.body.utf8.count)\r\nCache-Control: no-store\r\n\(response.headers)")
        if response.close { out.writeString("Connection: close\r\n") }
        out.writeString("\r\n")
        out.writeString(response.body)
        if response.close {
            context.writeAndFlush(wrapOutboundOut(out)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
