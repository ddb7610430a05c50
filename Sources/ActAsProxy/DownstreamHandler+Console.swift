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

/// Console requests: the small body is read here, the console answers asynchronously.
extension DownstreamHandler {
    // MARK: console

    func startConsole(_ head: RequestHead, target: RequestTarget, identity: IdentityResult) {
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
    func readConsoleBody() {
        guard !consoleBodyComplete else { return }
        switch exchange.requestBody {
        case .none, .done:
            exchange.requestBody = .done
        case .contentLength(let remaining):
            let take = Int(min(Int64(inbound.readableBytes), remaining))
            if take > 0 { consoleBody.append(contentsOf: inbound.readBytes(length: take)!) }
            exchange.requestBody = remaining == Int64(take) ? .done : .contentLength(remaining: remaining - Int64(take))
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
        guard case .done = exchange.requestBody else {
            resumeReadingIfNeeded()
            return
        }
        exchange.requestSent = true
        consoleBodyComplete = true
        dispatchConsole()
    }

    func dispatchConsole() {
        guard let head = consoleHead else { return }
        exchange.log?.fields.bytesIn = Int64(consoleBody.count)
        let request = ConsoleRequest(
            method: head.method, path: head.path, query: head.query, headers: head.headers, body: consoleBody,
            clientIP: String(decoding: clientAddress, as: UTF8.self), requestID: exchange.requestID.string,
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

    func consoleAnswered(_ response: ConsoleResponse, exchange id: UInt64) {
        guard id == exchangeID, state == .console else { return }
        consoleHead = nil
        exchange.responseStatus = response.status
        exchange.responseStarted = true
        exchange.closeAfterResponse = !exchange.clientKeepAlive || loop.draining
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
        if let restored = loop.identity.cookieJars.takeRestoration(signIn: exchange.signIn, live: loop.identity.live) { pendingOut.writeString(restored) }
        if let stream = response.stream {
            startConsoleStream(stream)
            return
        }
        pendingOut.writeStaticString("Content-Length: ")
        HeaderRewriter.writeDecimal(Int64(response.body.count), into: &pendingOut)
        pendingOut.writeStaticString("\r\nX-Request-Id: ")
        exchange.requestID.write(into: &pendingOut)
        pendingOut.writeStaticString("\r\n")
        pendingOut.writeBytes(settings.hstsLine)
        if exchange.closeAfterResponse { pendingOut.writeStaticString("Connection: close\r\n") }
        pendingOut.writeStaticString("\r\n")
        if exchange.method != .head { pendingOut.writeBytes(response.body) }
        exchange.log?.fields.bytesOut = Int64(response.body.count)
        completeExchange()
    }

    // MARK: streamed answers (Server-Sent Events)

    /// The rest of a streamed answer's head, then its pieces as they come, one chunk each; the
    /// connection closes after it (a stream has no natural end the client waits for).
    func startConsoleStream(_ stream: AsyncStream<[UInt8]>) {
        exchange.closeAfterResponse = true
        pendingOut.writeStaticString("Transfer-Encoding: chunked\r\nX-Request-Id: ")
        exchange.requestID.write(into: &pendingOut)
        pendingOut.writeStaticString("\r\n")
        pendingOut.writeBytes(settings.hstsLine)
        pendingOut.writeStaticString("Connection: close\r\n\r\n")
        guard exchange.method != .head else {
            completeExchange()  // the head only; the console does not produce for HEAD
            return
        }
        flushDownstream()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = exchangeID
        let pump = Task {
            for await piece in stream {
                bound.eventLoop.execute { bound.value.consoleStreamed(piece, exchange: id) }
            }
            bound.eventLoop.execute { bound.value.consoleStreamEnded(exchange: id) }
        }
        // The client left or the proxy cut the connection: the console stops producing.
        context.channel.closeFuture.whenComplete { _ in pump.cancel() }
    }

    func consoleStreamed(_ piece: [UInt8], exchange id: UInt64) {
        guard id == exchangeID, state == .console, !piece.isEmpty else { return }
        // A viewer that does not read would have every later record queued here (SPEC §9: no
        // flood ends the process): past the write buffer's high mark the stream is cut, and
        // the browser's EventSource comes back with Last-Event-ID, missing nothing.
        guard context.channel.isWritable else {
            context.close(promise: nil)
            return
        }
        pendingOut.writeString(String(piece.count, radix: 16))
        pendingOut.writeStaticString("\r\n")
        pendingOut.writeBytes(piece)
        pendingOut.writeStaticString("\r\n")
        exchange.log?.fields.bytesOut += Int64(piece.count)
        flushDownstream()
    }

    func consoleStreamEnded(exchange id: UInt64) {
        guard id == exchangeID, state == .console else { return }
        pendingOut.writeStaticString("0\r\n\r\n")
        completeExchange()
    }
}
