import ActAsHTTP
import NIOCore
import Testing

@Suite("Request buffering and body progress")
struct RequestBufferingTests {
    @Test func contentLengthBodyIsReadyWhenWholeOrWhenTheBufferIsFull() {
        #expect(RequestBuffering.contentLengthReady(remaining: 100, buffered: 100, limit: 65536))
        #expect(RequestBuffering.contentLengthReady(remaining: 100, buffered: 180, limit: 65536), "pipelined bytes after the body")
        #expect(!RequestBuffering.contentLengthReady(remaining: 100, buffered: 99, limit: 65536))
        #expect(!RequestBuffering.contentLengthReady(remaining: 1_000_000, buffered: 65535, limit: 65536))
        #expect(RequestBuffering.contentLengthReady(remaining: 1_000_000, buffered: 65536, limit: 65536))
    }

    /// The body arrives in pieces of every size; the lookahead says "complete" exactly when its
    /// last byte is in, and never consumes the buffer the exchange will forward from.
    @Test func chunkedLookaheadFindsTheEndAtEverySplit() throws {
        let body = "5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\nX-Checksum: abc\r\n\r\n"
        for split in [1, 2, 3, 5, 7, 64] {
            var lookahead = ChunkedLookahead(ChunkedDecoder())
            var buffer = ByteBuffer()
            let bytes = Array(body.utf8)
            var index = 0
            while index < bytes.count {
                let end = min(index + split, bytes.count)
                buffer.writeBytes(bytes[index..<end])
                index = end
                let complete = try lookahead.isComplete(buffer)
                #expect(complete == (index == bytes.count), "split \(split) at \(index)")
                #expect(buffer.readableBytes == index, "the lookahead consumed nothing")
            }
            #expect(lookahead.complete)
        }
    }

    @Test func chunkedLookaheadIgnoresPipelinedBytesAfterTheBody() throws {
        var lookahead = ChunkedLookahead(ChunkedDecoder())
        let buffer = ByteBuffer(string: "3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\n")
        let complete = try lookahead.isComplete(buffer)
        #expect(complete)
    }

    @Test func chunkedLookaheadRefusesWhatTheDecoderRefuses() {
        var lookahead = ChunkedLookahead(ChunkedDecoder())
        #expect(throws: HTTPParseError.self) { _ = try lookahead.isComplete(ByteBuffer(string: "0x10\r\n")) }
    }

    @Test func chunkedLookaheadHonoursTheBodyLimit() {
        var lookahead = ChunkedLookahead(ChunkedDecoder(limits: HTTPLimits(maxBody: 4)))
        #expect(throws: HTTPParseError.self) { _ = try lookahead.isComplete(ByteBuffer(string: "5\r\nhello\r\n")) }
    }

    private func tick(_ clock: inout BodyProgressClock, now: NIODeadline, waitingForClient: Bool, lastActivity: NIODeadline, timeout: TimeAmount) -> Bool {
        clock.expired(now: now, waitingForClient: waitingForClient, lastActivity: lastActivity, timeout: timeout)
    }

    @Test func bodyClockCountsOnlyTimeTheClientOwesBytes() {
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        let timeout = TimeAmount.seconds(2)
        var clock = BodyProgressClock()
        #expect(!tick(&clock, now: t0, waitingForClient: true, lastActivity: t0, timeout: timeout))
        #expect(!tick(&clock, now: t0 + .milliseconds(1_900), waitingForClient: true, lastActivity: t0, timeout: timeout))
        // A byte arrives: the clock starts again from it.
        let byte = t0 + .milliseconds(1_950)
        #expect(!tick(&clock, now: t0 + .seconds(3), waitingForClient: true, lastActivity: byte, timeout: timeout))
        #expect(tick(&clock, now: byte + .milliseconds(2_001), waitingForClient: true, lastActivity: byte, timeout: timeout))
    }

    @Test func bodyClockStopsWhileTheProxyHoldsTheBodyBack() {
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        let timeout = TimeAmount.seconds(2)
        var clock = BodyProgressClock()
        #expect(!tick(&clock, now: t0, waitingForClient: true, lastActivity: t0, timeout: timeout))
        // The upstream stopped taking the body for a minute: not the client's fault.
        #expect(!tick(&clock, now: t0 + .seconds(30), waitingForClient: false, lastActivity: t0, timeout: timeout))
        #expect(!tick(&clock, now: t0 + .seconds(60), waitingForClient: false, lastActivity: t0, timeout: timeout))
        // Reading resumes: the client gets the whole timeout again from here.
        let resumed = t0 + .seconds(61)
        #expect(!tick(&clock, now: resumed, waitingForClient: true, lastActivity: t0, timeout: timeout))
        #expect(!tick(&clock, now: resumed + .milliseconds(1_999), waitingForClient: true, lastActivity: t0, timeout: timeout))
        #expect(tick(&clock, now: resumed + .milliseconds(2_001), waitingForClient: true, lastActivity: t0, timeout: timeout))
    }
}
