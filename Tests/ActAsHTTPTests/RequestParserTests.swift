import ActAsHTTP
import NIOCore
import Testing

@Suite("Request heads")
struct RequestParserTests {
    @Test func parsesASimpleGet() throws {
        let head = try #require(parseRequest("GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n").value)
        #expect(head.method == .get)
        #expect(head.target == "/a?b=c")
        #expect(head.version == .http1_1)
        #expect(head.host == "example.com")
        #expect(head.framing == .none)
        #expect(head.keepAlive)
        #expect(head.block.pairs.map(\.0) == ["Host", "Accept"])
    }

    @Test func trimsOptionalWhitespaceAroundValues() throws {
        let head = try #require(parseRequest("GET / HTTP/1.1\r\nHost:   h  \r\nX-A:\tv \t\r\nX-Empty:\r\n\r\n").value)
        #expect(head.block.pairs.map(\.1) == ["h", "v", ""])
    }

    @Test func framingByContentLengthAndChunked() throws {
        #expect(try #require(parseRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n").value).framing == .contentLength(12))
        #expect(try #require(parseRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").value).framing == .none)
        #expect(try #require(parseRequest("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n").value).framing == .chunked)
    }

    @Test func connectionSemantics() throws {
        #expect(try #require(parseRequest("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").value).keepAlive == false)
        #expect(try #require(parseRequest("GET / HTTP/1.0\r\n\r\n").value).keepAlive == false)
        #expect(try #require(parseRequest("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").value).keepAlive)
        let upgrade = try #require(parseRequest("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n").value)
        #expect(upgrade.connection.upgrade)
        #expect(upgrade.upgradeIndex == 2)
        let nominated = try #require(parseRequest("GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret\r\n\r\n").value)
        #expect(nominated.connection.nominatesOtherHeaders)
    }

    @Test func expectContinue() throws {
        #expect(try #require(parseRequest("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").value).expectContinue)
        #expect(parseRequest("PUT / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n").failure?.status == 417)
    }

    @Test func skipsAFewLeadingEmptyLines() throws {
        #expect(parseRequest("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").value != nil)
        #expect(parseRequest("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").isFailure)
    }

    @Test func incompleteHeadAsksForMore() {
        var parser = HeadParser(kind: .request)
        #expect(try! parser.parse(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: h\r\n")) == nil)
    }

    /// Smuggling and framing cases: every one refused with the given status, whole and bytewise.
    static let hostile: [(String, String, Int)] = [
        ("CL.TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("TE.CL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n", 400),
        ("duplicate CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
        ("differing CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        ("CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400),
        ("CL sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400),
        ("CL negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        ("CL hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400),
        ("CL overflow", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("CL space inside", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", 400),
        ("xchunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
        ("chunked, identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
        ("identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 400),
        ("gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400),
        ("two TE", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("TE with space before colon", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
        ("TE vertical tab", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \u{0B}chunked\r\n\r\n", 400),
        ("obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400),
        ("obs-fold with tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400),
        ("bare LF in header", "GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n", 400),
        ("bare LF request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400),
        ("bare CR in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400),
        ("bare CR line end", "GET / HTTP/1.1\r\nHost: h\rX-A: b\r\n\r\n", 400),
        ("NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{0}b\r\n\r\n", 400),
        ("NUL in name", "GET / HTTP/1.1\r\nHost: h\r\nX\u{0}A: b\r\n\r\n", 400),
        ("DEL in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{7F}\r\n\r\n", 400),
        ("space in name", "GET / HTTP/1.1\r\nHost: h\r\nX A: b\r\n\r\n", 400),
        ("space before colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n", 400),
        ("empty name", "GET / HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n", 400),
        ("no colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n", 400),
        ("missing Host", "GET / HTTP/1.1\r\n\r\n", 400),
        ("two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        ("Host with userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
        ("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
        ("lowercase method is a token but version is checked", "GET / http/1.1\r\nHost: h\r\n\r\n", 400),
        ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        ("HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505),
        ("HTTP/0.9", "GET /\r\n\r\n", 400),
        ("two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("tab separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("control in target", "GET /a\u{1}b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("high byte in target", "GET /\u{E9} HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("invalid method char", "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("trailing space after version", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
        ("Connection with garbage", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close;x\r\n\r\n", 400),
    ]

    @Test(arguments: hostile)
    func refusesHostileRequests(_ name: String, _ request: String, _ status: Int) {
        let whole = parseRequest(request)
        #expect(whole.failure?.status == status, "\(name): \(String(describing: whole))")
        let bytewise = parseRequestBytewise(Array(request.utf8))
        #expect(bytewise.failure?.status == status, "\(name) bytewise: \(String(describing: bytewise))")
    }

    @Test func limitsGiveTheirStatus() {
        let limits = HTTPLimits(maxRequestLine: 100, maxHeaderBytes: 1024, maxHeaders: 5, maxBody: 1000)
        let longLine = "GET /" + String(repeating: "a", count: 200) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(parseRequest(longLine, limits: limits).failure?.status == 414)
        // 414 is decided before the line ends.
        var parser = HeadParser(kind: .request, limits: limits)
        #expect(throws: HTTPParseError.uriTooLong) { try parser.parse(ByteBuffer(string: "GET /" + String(repeating: "a", count: 200))) }

        let manyHeaders = "GET / HTTP/1.1\r\nHost: h\r\n" + (1...5).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect(parseRequest(manyHeaders, limits: limits).failure?.status == 431)
        let bigHeader = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "b", count: 2000) + "\r\n\r\n"
        #expect(parseRequest(bigHeader, limits: limits).failure?.status == 431)
        // 431 is decided without waiting for the end of the line.
        var parser2 = HeadParser(kind: .request, limits: limits)
        #expect(throws: HTTPParseError.headersTooLarge) { try parser2.parse(ByteBuffer(string: "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "b", count: 2000))) }

        #expect(parseRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n", limits: limits).failure?.status == 413)
        #expect(parseRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n", limits: limits).value != nil)
    }

    @Test func everySplitGivesTheSameHead() throws {
        let request = Array("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-A: 1\r\n\r\n".utf8)
        for split in 1..<request.count {
            var parser = HeadParser(kind: .request)
            var buffer = ByteBuffer(bytes: request[..<split])
            #expect(try parser.parse(buffer) == nil)
            buffer.writeBytes(request[split...])
            let length = try #require(try parser.parse(buffer))
            #expect(length == request.count)
            let head = try parser.finishRequest(buffer.readSlice(length: length)!)
            #expect(head.framing == .contentLength(3))
            #expect(head.block.pairs.count == 3)
        }
    }

    /// Found by the fuzzer: a CONNECT authority-form target was refused when fed in pieces
    /// but accepted whole (the proxy then answers 405).
    @Test func connectTargetSameVerdictWholeAndBytewise() {
        let request = Array("CONNECT :443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n".utf8)
        #expect(parseRequest(request).isFailure == parseRequestBytewise(request).isFailure)
    }

    @Test func tokenCharactersMatchTheRFC() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(CharacterClasses.isToken(byte) == tchar.contains(byte), "byte \(byte)")
        }
    }
}

@Suite("Response heads")
struct ResponseParserTests {
    @Test func framing() throws {
        #expect(try #require(parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").value).framing == .contentLength(5))
        #expect(try #require(parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n").value).framing == .contentLength(5))
        #expect(try #require(parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").value).framing == .chunked)
        #expect(try #require(parseResponse("HTTP/1.1 200 OK\r\n\r\n").value).framing == .untilClose)
        #expect(try #require(parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", method: .head).value).framing == .none)
        #expect(try #require(parseResponse("HTTP/1.1 204 No Content\r\n\r\n").value).framing == .none)
        #expect(try #require(parseResponse("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").value).framing == .none)
        #expect(try #require(parseResponse("HTTP/1.1 100 Continue\r\n\r\n").value).status == 100)
        #expect(try #require(parseResponse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").value).status == 200)
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
    ])
    func refusesUntrustworthyResponses(_ response: String) {
        #expect(parseResponse(response).failure?.status == 502)
    }
}
