import CompressNIO
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// The bundled "legacy app": what a newcomer puts behind ActAs to see it work. It shows the
/// identity headers it received and has the kinds of pages a real app has (HTML, a form, JSON,
/// gzip, a chunked stream, a WebSocket). Built on NIOHTTP1 on purpose: it plays somebody
/// else's server, not ActAs.
public enum DemoApp {
    /// Binds the demo app on host:port on `group`; returns the bound server channel.
    public static func start(host: String, port: Int, group: any EventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketServerUpgrader(
                        shouldUpgrade: { channel, head in
                            channel.eventLoop.makeSucceededFuture(head.uri.hasPrefix("/ws") ? HTTPHeaders() : nil)
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(WebSocketEchoHandler())
                            }
                        })
                    let handler = DemoHTTPHandler()
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    static let identityHeaders = [
        "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Impersonator-User", "X-Impersonator-Email",
        "X-Impersonation-Id", "X-Impersonation-Mode", "X-Impersonation-Expires", "X-ActAs-Jwt-Assertion",
        "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id",
    ]

    /// By Unicode scalar: a quote followed by a combining mark is one Character, not a quote.
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func json(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func page(_ title: String, _ body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title)) · Acme Legacy HR</title>
        <style>
        body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
        header{background:#24292f;color:#fff;padding:.75rem 1.5rem}header a{color:#fff;margin-right:1rem}
        main{max-width:60rem;margin:1.5rem auto;padding:0 1.5rem}
        table{border-collapse:collapse;width:100%;background:#fff}td,th{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;vertical-align:top;word-break:break-all}
        th{background:#eaeef2;width:18rem}.absent{color:#6e7781;font-style:italic}
        form{background:#fff;padding:1rem;border:1px solid #d0d7de}label{display:block;margin:.5rem 0}input,textarea{width:100%;padding:.4rem}
        </style></head><body>
        <header><strong>Acme Legacy HR</strong> &nbsp; <a href="/">Home</a><a href="/form">Form</a><a href="/api/whoami">JSON</a><a href="/gzip">Gzip</a><a href="/stream">Stream</a><a href="/ws-page">WebSocket</a></header>
        <main><h1>\(escape(title))</h1>
        \(body)
        </main></body></html>

        """
    }
}

final class DemoHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes <= 16 << 20 { body.writeBuffer(&chunk) }
        case .end:
            guard let head else { return }
            self.head = nil
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = String(head.uri.prefix { $0 != "?" })
        let query = Self.query(head.uri)
        switch (head.method, path) {
        case (.GET, "/"), (.HEAD, "/"):
            send(context, head, html: DemoApp.page("Who am I?", Self.identityTables(head.headers)))
        case (.GET, "/form"):
            send(context, head, html: DemoApp.page("Leave request", """
                <form method="post" action="/form">
                <label>Name <input name="name" autocomplete="name"></label>
                <label>Comment <textarea name="comment"></textarea></label>
                <button type="submit">Submit</button></form>
                """))
        case (.POST, "/form"):
            let fields = Self.formFields(String(buffer: body))
            let rows = fields.map { "<tr><th>\(DemoApp.escape($0.0))</th><td>\(DemoApp.escape($0.1))</td></tr>" }.joined()
            let who = head.headers.first(name: "X-Forwarded-User") ?? "(nobody)"
            send(context, head, html: DemoApp.page("Submitted", "<p>Submitted by <strong>\(DemoApp.escape(who))</strong>.</p><table>\(rows)</table>"))
        case (.GET, "/api/whoami"):
            let h = head.headers
            let groups = (h.first(name: "X-Forwarded-Groups") ?? "").split(separator: ",").map { DemoApp.json(String($0)) }
            let json = "{\"user\":\(h.first(name: "X-Forwarded-User").map(DemoApp.json) ?? "null"),"
                + "\"email\":\(h.first(name: "X-Forwarded-Email").map(DemoApp.json) ?? "null"),"
                + "\"groups\":[\(groups.joined(separator: ","))],"
                + "\"impersonator\":\(h.first(name: "X-Impersonator-User").map(DemoApp.json) ?? "null"),"
                + "\"request_id\":\(h.first(name: "X-Request-Id").map(DemoApp.json) ?? "null"),"
                + "\"method\":\(DemoApp.json(head.method.rawValue)),\"path\":\(DemoApp.json(path))}\n"
            send(context, head, status: .ok, contentType: "application/json", body: ByteBuffer(string: json))
        case (.POST, "/api/echo"):
            var headers = HTTPHeaders()
            headers.add(name: "X-Demo-Body-Bytes", value: String(body.readableBytes))
            send(context, head, status: .ok, contentType: head.headers.first(name: "Content-Type") ?? "application/octet-stream", body: body, extra: headers)
        case (.GET, "/gzip"):
            let text = DemoApp.page("A compressed page", (1...200).map { "<p>Line \($0): the quick brown fox jumps over the lazy dog.</p>" }.joined(separator: "\n"))
            var headers = HTTPHeaders()
            headers.add(name: "Vary", value: "Accept-Encoding")
            var buffer = ByteBuffer(string: text)
            if head.headers[canonicalForm: "Accept-Encoding"].contains(where: { $0.lowercased().hasPrefix("gzip") }),
                let compressed = try? buffer.compress(with: .gzip())
            {
                headers.add(name: "Content-Encoding", value: "gzip")
                buffer = compressed
            }
            send(context, head, status: .ok, contentType: "text/html; charset=utf-8", body: buffer, extra: headers)
        case (.GET, "/stream"):
            stream(context, head, parts: min(Int(query["parts"] ?? "") ?? 10, 10_000), delay: min(Int(query["delay_ms"] ?? "") ?? 100, 5000))
        case (.GET, "/ws-page"):
            send(context, head, html: DemoApp.page("WebSocket echo", """
                <p>Status: <span id="status">connecting…</span></p><p>Echo: <code id="echo"></code></p>
                <script>
                const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
                ws.onopen = () => { document.getElementById("status").textContent = "open"; ws.send("hello through the proxy"); };
                ws.onmessage = (e) => { document.getElementById("echo").textContent = e.data; };
                ws.onclose = () => { document.getElementById("status").textContent = "closed"; };
                </script>
                """))
        case (.GET, "/static/hello.txt"):
            send(context, head, status: .ok, contentType: "text/plain; charset=utf-8", body: ByteBuffer(string: "hello from static\n"))
        default:
            send(context, head, status: .notFound, contentType: "text/html; charset=utf-8",
                 body: ByteBuffer(string: DemoApp.page("Not found", "<p>Nothing at \(DemoApp.escape(path)).</p>")))
        }
    }

    static func identityTables(_ headers: HTTPHeaders) -> String {
        let identity = DemoApp.identityHeaders.map { name -> String in
            var value = headers.first(name: name).map(DemoApp.escape) ?? "<span class=\"absent\">(absent)</span>"
            if name == "X-ActAs-Jwt-Assertion", let jwt = headers.first(name: name) {
                let claims = Self.decodedJWT(jwt).map {
                    "<p>Header and claims (verify the signature with <code>/.well-known/actas/jwks.json</code>):</p><pre>\(DemoApp.escape($0))</pre>"
                }
                value = "<details><summary><code>\(DemoApp.escape(String(jwt.prefix(40))))…</code></summary><pre>\(DemoApp.escape(jwt))</pre></details>"
                    + (claims ?? "")
            }
            return "<tr><th>\(name)</th><td>\(value)</td></tr>"
        }.joined()
        let known = Set(DemoApp.identityHeaders.map { $0.lowercased() })
        let others = headers.filter { !known.contains($0.name.lowercased()) }
            .map { "<tr><th>\(DemoApp.escape($0.name))</th><td>\(DemoApp.escape($0.value))</td></tr>" }.joined()
        return "<h2>Identity headers</h2><table>\(identity)</table><h2>Other request headers</h2><table>\(others)</table>"
    }

    /// The JWT's header and payload, pretty-printed (the signature is the proxy's business to
    /// make and the app's to check against the JWKS).
    static func decodedJWT(_ token: String) -> String? {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return nil }
        func decode(_ part: Substring) -> String? {
            var base64 = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while base64.count % 4 != 0 { base64 += "=" }
            guard let data = Data(base64Encoded: base64), let object = try? JSONSerialization.jsonObject(with: data),
                  let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) else { return nil }
            return String(decoding: pretty, as: UTF8.self)
        }
        guard let header = decode(parts[0]), let claims = decode(parts[1]) else { return nil }
        return header + "\n" + claims
    }

    static func query(_ uri: String) -> [String: String] {
        guard let mark = uri.firstIndex(of: "?") else { return [:] }
        return formFields(String(uri[uri.index(after: mark)...])).reduce(into: [:]) { $0[$1.0] = $1.1 }
    }

    static func formFields(_ text: String) -> [(String, String)] {
        text.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    private func send(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, html: String) {
        send(context, head, status: .ok, contentType: "text/html; charset=utf-8", body: ByteBuffer(string: html))
    }

    private func send(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, body: ByteBuffer, extra: HTTPHeaders = [:]) {
        var headers = extra
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let keepAlive = request.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }

    /// A page sent in parts, `delay` ms apart, chunked: streaming through the proxy is visible.
    private func stream(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, parts: Int, delay: Int) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/html; charset=utf-8")
        headers.add(name: "Cache-Control", value: "no-store")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "<!doctype html><html><head><meta charset=\"utf-8\"><title>Stream</title></head><body><h1>Streaming \(parts) parts</h1>\n")))), promise: nil)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        func sendPart(_ index: Int) {
            let (handler, context) = bound.value
            guard context.channel.isActive else { return }
            if index > parts {
                context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "<p>done</p></body></html>\n")))), promise: nil)
                context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "<p>part \(index)</p>\n")))), promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(delay))) { sendPart(index + 1) }
        }
        sendPart(1)
    }
}

final class WebSocketEchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private var closing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            guard !closing else {
                context.close(promise: nil)
                return
            }
            closing = true
            var data = frame.unmaskedData
            let code = data.readSlice(length: 2) ?? ByteBuffer()
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        default:
            break
        }
    }
}
