import ActAsHTTP
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// ARCHITECTURE decision 2: whatever NIOHTTP1's parser (llhttp) rejects, ActAs rejects too.
/// The corpus is hand-written hostile requests plus systematic single-byte mutations of
/// valid ones (every interesting byte inserted at every position, every byte replaced).
@Suite("Differential against NIOHTTP1")
struct DifferentialTests {
    static let valid: [String] = [
        "GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
        "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nX-T: v\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    ]

    static let mutationBytes: [UInt8] = [0x00, 0x0D, 0x0A, 0x20, 0x09, 0x0B, 0x7F, 0x80, 0xFF, 0x3A, 0x2C, 0x3B, 0x22, 0x2F]

    static func corpus() -> [[UInt8]] {
        var cases: [[UInt8]] = RequestParserTests.hostile.map { Array($0.1.utf8) }
        cases += ChunkedDecoderTests.hostile.map { Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\($0.1)".utf8) }
        for request in valid {
            let bytes = Array(request.utf8)
            cases.append(bytes)
            for position in 0...bytes.count {
                for byte in mutationBytes {
                    var inserted = bytes
                    inserted.insert(byte, at: position)
                    cases.append(inserted)
                    if position < bytes.count {
                        var replaced = bytes
                        replaced[position] = byte
                        cases.append(replaced)
                    }
                }
                if position < bytes.count {
                    var deleted = bytes
                    deleted.remove(at: position)
                    cases.append(deleted)
                }
            }
        }
        return cases
    }

    /// llhttp's verdict: true when it raised a parse error.
    static func nioRejects(_ bytes: [UInt8]) -> Bool {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        do {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            while let _ = try channel.readInbound(as: HTTPServerRequestPart.self) {}
            return false
        } catch {
            return true
        }
    }

    /// Ours, as the proxy reads a connection: head, body as framed, then whatever follows
    /// as the next pipelined request.
    static func actasRejects(_ bytes: [UInt8]) -> Bool {
        var buffer = ByteBuffer(bytes: bytes)
        do {
            while buffer.readableBytes > 0 {
                var parser = HeadParser(kind: .request)
                guard let length = try parser.parse(buffer) else { return false }
                let head = try parser.finishRequest(buffer.readSlice(length: length)!)
                switch head.framing {
                case .chunked:
                    var decoder = ChunkedDecoder()
                    decoding: while let event = try decoder.next(&buffer) {
                        if case .end = event { break decoding }
                    }
                    if !decoder.isDone { return false }
                case .contentLength(let length):
                    guard buffer.readableBytes >= Int(length) else { return false }
                    buffer.moveReaderIndex(forwardBy: Int(length))
                default:
                    break
                }
            }
            return false
        } catch {
            return true
        }
    }

    @Test func everythingNIOHTTP1RejectsWeRejectToo() {
        var checked = 0
        var nioRejected = 0
        var missed: [String] = []
        for bytes in Self.corpus() {
            checked += 1
            guard Self.nioRejects(bytes) else { continue }
            nioRejected += 1
            if !Self.actasRejects(bytes) {
                missed.append(String(decoding: bytes, as: UTF8.self).debugDescription)
            }
        }
        #expect(checked > 3000)
        #expect(nioRejected > 100, "the corpus should contain many requests llhttp refuses")
        #expect(missed.isEmpty, "accepted by ActAs but rejected by NIOHTTP1 (\(missed.count)): \(missed.prefix(10))")
    }
}
