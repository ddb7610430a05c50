import ActAsHTTP
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing
@testable import ActAsProxy

@Suite struct HTTP2TranslationTests {
    let allocator = ByteBufferAllocator()

    func request(_ fields: [(String, String)], endStream: Bool = true) -> HTTP2Translation.Request {
        HTTP2Translation.request(HPACKHeaders(fields), endStream: endStream, allocator: allocator)
    }

    func head(_ fields: [(String, String)], endStream: Bool = true) -> (String, HTTP2Translation.RequestBody)? {
        guard case .head(let bytes, _, let body) = request(fields, endStream: endStream) else { return nil }
        return (String(buffer: bytes), body)
    }

    static let base = [(":method", "GET"), (":scheme", "https"), (":authority", "app.example"), (":path", "/a?b=1")]

    @Test func aGetBecomesTheSameHTTP1Request() {
        let result = head(Self.base + [("accept", "text/html"), ("x-custom", "one, two")])
        #expect(result?.0 == "GET /a?b=1 HTTP/1.1\r\nhost: app.example\r\naccept: text/html\r\nx-custom: one, two\r\n\r\n")
        #expect(result?.1 == HTTP2Translation.RequestBody.none)
    }

    @Test func splitCookiesAreJoinedIntoOneField() {
        let result = head(Self.base + [("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")])
        #expect(result?.0 == "GET /a?b=1 HTTP/1.1\r\nhost: app.example\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n")
    }

    @Test func aBodyWithoutLengthIsChunkedAndWithLengthPassesAsIs() {
        let post = [(":method", "POST"), (":scheme", "https"), (":authority", "h"), (":path", "/p")]
        #expect(head(post, endStream: false)?.0 == "POST /p HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(head(post, endStream: false)?.1 == .chunked)
        let sized = head(post + [("content-length", "3")], endStream: false)
        #expect(sized?.0 == "POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\n")
        #expect(sized?.1 == .contentLength(3))
    }

    @Test func aMatchingHostIsReplacedByTheAuthority() {
        #expect(head(Self.base + [("host", "APP.example")])?.0 == "GET /a?b=1 HTTP/1.1\r\nhost: app.example\r\n\r\n")
        // Without :authority the host field is the request's Host, as sent.
        let noAuthority = [(":method", "GET"), (":scheme", "https"), (":path", "/"), ("host", "h.example")]
        #expect(head(noAuthority)?.0 == "GET / HTTP/1.1\r\nhost: h.example\r\n\r\n")
    }

    @Test(arguments: [
        [(":method", "GET"), (":scheme", "https"), (":authority", "h"), (":path", "a/b")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "h"), (":path", "*")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "h"), (":path", "https://h/x")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "h")],
        [(":scheme", "https"), (":authority", "h"), (":path", "/")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "h"), (":path", "/"), ("host", "evil")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "h"), (":path", "/"), ("x-a", " padded")],
        [(":method", "GET"), (":scheme", "https"), (":authority", "h"), (":path", "/"), ("x-a", "padded\t")],
        [(":method", "CONNECT"), (":authority", "h:443"), (":path", "/")],
    ])
    func malformedRequestsAreRefused(_ fields: [(String, String)]) {
        guard case .malformed = request(fields) else {
            Issue.record("accepted \(fields)")
            return
        }
    }

    @Test func optionsStarIsAllowed() {
        let result = head([(":method", "OPTIONS"), (":scheme", "https"), (":authority", "h"), (":path", "*")])
        #expect(result?.0.hasPrefix("OPTIONS * HTTP/1.1\r\n") == true)
    }

    @Test func requestTrailersBecomeTheChunkedTrailerSection() {
        var out = allocator.buffer(capacity: 64)
        HTTP2Translation.lastChunk(trailers: HPACKHeaders([("x-sum", "9"), ("x-forwarded-user", "mallory")]), into: &out)
        // The pipeline applies the HTTP/1.1 rule to these (dropped, names logged).
        #expect(String(buffer: out) == "0\r\nx-sum: 9\r\nx-forwarded-user: mallory\r\n\r\n")
    }

    @Test func responseHeadsLoseConnectionFieldsAndKeepCookiesApart() throws {
        var parser = HeadParser(kind: .response)
        var bytes = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
            + "Transfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Request-Id: r\r\n\r\n")
        let length = try #require(try parser.parse(bytes))
        let head = try parser.finishResponse(bytes.readSlice(length: length)!, requestMethod: .get)
        let headers = HTTP2Translation.responseHeaders(head)
        #expect(headers.map { "\($0.name)=\($0.value)" } == [":status=200", "content-type=text/html", "set-cookie=a=1", "set-cookie=b=2", "x-request-id=r"])
    }
}

/// The bridge on an EmbeddedChannel: frames in, the pipeline's bytes out, and back.
@Suite struct HTTP2StreamBridgeTests {
    func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2StreamBridge(limits: HTTPLimits()))
        return channel
    }

    func headers(_ fields: [(String, String)], endStream: Bool) -> HTTP2Frame.FramePayload {
        .headers(.init(headers: HPACKHeaders(fields), endStream: endStream))
    }

    func readBytes(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func readFrames(_ channel: EmbeddedChannel) throws -> [HTTP2Frame.FramePayload] {
        var frames: [HTTP2Frame.FramePayload] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) { frames.append(frame) }
        return frames
    }

    @Test func aChunkedUploadWithTrailers() throws {
        let channel = try makeChannel()
        try channel.writeInbound(headers([(":method", "POST"), (":scheme", "https"), (":authority", "h"), (":path", "/up")], endStream: false))
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: "hello")))))
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: "")))))
        try channel.writeInbound(headers([("x-sum", "5")], endStream: true))
        #expect(try readBytes(channel) == "POST /up HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n")
    }

    @Test func aSizedBodyIsNotCompleteUntilTheStreamEnds() throws {
        let channel = try makeChannel()
        try channel.writeInbound(headers([(":method", "POST"), (":scheme", "https"), (":authority", "h"), (":path", "/"),
                                          ("content-length", "3")], endStream: false))
        #expect(try readBytes(channel).hasSuffix("content-length: 3\r\n\r\n"))
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: "abc")))))
        // The length is reached without END_STREAM: more DATA would be a stream error.
        #expect(try readBytes(channel) == "ab")
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        #expect(try readBytes(channel) == "c")
    }

    @Test func aMalformedStreamIsResetAndNothingPasses() throws {
        let channel = try makeChannel()
        try channel.writeInbound(headers([(":method", "GET"), (":scheme", "https"), (":authority", "h"), (":path", "nope")], endStream: true))
        #expect(try readBytes(channel) == "")
        let frames = try readFrames(channel)
        guard case .rstStream(let code) = frames.first else {
            Issue.record("no RST_STREAM: \(frames)")
            return
        }
        #expect(code == .protocolError)
        #expect(!channel.isActive)
    }

    @Test func aChunkedResponseWithTrailersInPieces() throws {
        let channel = try makeChannel()
        try channel.writeInbound(headers([(":method", "GET"), (":scheme", "https"), (":authority", "h"), (":path", "/")], endStream: true))
        _ = try readBytes(channel)
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nab"))
        try channel.writeOutbound(ByteBuffer(string: "c\r\n0\r\nX-Done: 1\r\n\r\n"))
        let frames = try readFrames(channel)
        var described: [String] = []
        for frame in frames {
            switch frame {
            case .headers(let h): described.append("H\(h.endStream ? "!" : "") " + h.headers.map { "\($0.name)=\($0.value)" }.joined(separator: ","))
            case .data(let d):
                guard case .byteBuffer(let b) = d.data else { continue }
                described.append("D\(d.endStream ? "!" : "") " + String(buffer: b))
            default: described.append("\(frame)")
            }
        }
        #expect(described == ["H :status=200", "D ab", "D c", "H! x-done=1"])
    }

    @Test func aSizedResponseEndsWithItsLastByteAndAHeadResponseAtOnce() throws {
        let channel = try makeChannel()
        try channel.writeInbound(headers([(":method", "HEAD"), (":scheme", "https"), (":authority", "h"), (":path", "/")], endStream: true))
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"))
        let head = try readFrames(channel)
        guard case .headers(let h) = head.first else {
            Issue.record("no HEADERS: \(head)")
            return
        }
        #expect(h.endStream && head.count == 1)

        let get = try makeChannel()
        try get.writeInbound(headers([(":method", "GET"), (":scheme", "https"), (":authority", "h"), (":path", "/")], endStream: true))
        try get.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"))
        try get.writeOutbound(ByteBuffer(string: "cd"))
        let frames = try readFrames(get)
        guard frames.count == 3, case .data(let last) = frames[2] else {
            Issue.record("frames: \(frames)")
            return
        }
        #expect(last.endStream)
    }
}
