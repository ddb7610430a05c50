import ActAsHTTP
import NIOCore
import Testing

@Suite("Chunked bodies")
struct ChunkedDecoderTests {
    @Test func decodesChunksExtensionsAndTrailersAtEverySplit() throws {
        let body = "5\r\nhello\r\n7;name=value\r\n, world\r\nA;ext;q=\"a \\\"b\"\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\nGET /next"
        for split in [1, 2, 3, 5, 7, 11, 64, Int.max] {
            let decoded = try #require(decodeChunked(body, split: split).value, "split \(split)")
            #expect(decoded.body == "hello, world0123456789")
            #expect(decoded.trailers == ["X-Checksum: abc", "X-Other: d"])
            #expect(decoded.rest == "GET /next", "pipelined bytes after the body stay unconsumed")
        }
    }

    @Test func emptyBodyAndUppercaseHex() throws {
        #expect(try #require(decodeChunked("0\r\n\r\n").value).body == "")
        #expect(try #require(decodeChunked("A\r\n0123456789\r\n0\r\n\r\n").value).body == "0123456789")
        #expect(try #require(decodeChunked("000a\r\n0123456789\r\n0000\r\n\r\n").value).body == "0123456789")
    }

    static let hostile: [(String, String, Int)] = [
        ("0x prefix", "0x10\r\n0123456789abcdef\r\n0\r\n\r\n", 400),
        ("plus sign", "+5\r\nhello\r\n0\r\n\r\n", 400),
        ("minus sign", "-5\r\nhello\r\n0\r\n\r\n", 400),
        ("17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", 400),
        ("empty size", "\r\nhello\r\n0\r\n\r\n", 400),
        ("space inside size", "1 0\r\n", 400),
        ("CR in extension", "5;a=\rb\r\nhello\r\n0\r\n\r\n", 400),
        ("CR in quoted extension", "5;a=\"x\ry\"\r\nhello\r\n0\r\n\r\n", 400),
        ("space after size", "5 \r\nhello\r\n0\r\n\r\n", 400),
        ("space in extension", "5;a =b\r\nhello\r\n0\r\n\r\n", 400),
        ("empty extension name", "5;\r\nhello\r\n0\r\n\r\n", 400),
        ("unterminated quote", "5;a=\"b\r\nhello\r\n0\r\n\r\n", 400),
        ("LF in extension", "5;a=\nb\r\nhello\r\n0\r\n\r\n", 400),
        ("NUL in extension", "5;a\u{0}\r\nhello\r\n0\r\n\r\n", 400),
        ("bare LF after size", "5\nhello\r\n0\r\n\r\n", 400),
        ("data longer than size", "5\r\nhello!\r\n0\r\n\r\n", 400),
        ("data without CRLF", "5\r\nhelloXY0\r\n\r\n", 400),
        ("bare LF after data", "5\r\nhello\n0\r\n\r\n", 400),
        ("garbage after size", "5x\r\nhello\r\n0\r\n\r\n", 400),
        ("obs-fold in trailer", "0\r\nX-A: a\r\n b\r\n\r\n", 400),
        ("bare LF in trailer", "0\r\nX-A: a\nX-B: b\r\n\r\n", 400),
        ("space in trailer name", "0\r\nX A: a\r\n\r\n", 400),
        ("size overflows", "FFFFFFFFFFFFFFFF\r\n", 413),
    ]

    @Test(arguments: hostile)
    func refusesBadFraming(_ name: String, _ body: String, _ status: Int) {
        for split in [1, Int.max] {
            let result = decodeChunked(body, split: split)
            #expect(result.failure?.status == status, "\(name), split \(split): \(String(describing: result))")
        }
    }

    @Test func bodyLimitIsEnforcedBeforeTheDataArrives() {
        let limits = HTTPLimits(maxBody: 10)
        #expect(decodeChunked("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", limits: limits).value?.body == "helloworld")
        // The size line alone is enough to refuse.
        var decoder = ChunkedDecoder(limits: limits)
        var buffer = ByteBuffer(string: "5\r\nhello\r\n6\r\n")
        #expect(throws: HTTPParseError.bodyTooLarge) {
            while try decoder.next(&buffer) != nil {}
        }
    }

    @Test func longExtensionsAreRefused() {
        let body = "5;" + String(repeating: "a", count: 5000) + "\r\nhello\r\n0\r\n\r\n"
        #expect(decodeChunked(body).failure?.status == 400)
    }

    @Test func dataIsHandedOutWithoutCopies() throws {
        var decoder = ChunkedDecoder()
        var buffer = ByteBuffer(string: "5\r\nhello\r\n0\r\n\r\n")
        guard case .data(let slice)? = try decoder.next(&buffer) else {
            Issue.record("expected data")
            return
        }
        #expect(String(buffer: slice) == "hello")
        #expect(slice.readableBytes == 5)
    }

    @Test func encoderWritesLowercaseHex() {
        for size in [1, 9, 10, 15, 16, 255, 4096, 1 << 20] {
            var buffer = ByteBuffer()
            ChunkedEncoding.writeChunkHeader(size, into: &buffer)
            #expect(String(buffer: buffer) == String(size, radix: 16) + "\r\n")
        }
    }
}
