import NIOCore

/// When a request with a body may take an upstream connection (nginx's request buffering): a
/// body that fits the proxy's buffer is read whole first, a larger one once the buffer is full.
/// A client that trickles its body in then holds only its own connection, never one of the
/// upstream pool's (issue 21: slow bodies held pool connections for minutes).
public enum RequestBuffering {
    /// A `Content-Length` body with `remaining` bytes to come, `buffered` of which have arrived.
    public static func contentLengthReady(remaining: Int64, buffered: Int, limit: Int) -> Bool {
        Int64(buffered) >= remaining || buffered >= limit
    }
}

/// Reads ahead through a chunked request body held in a buffer, without consuming it, to tell
/// when the body is complete. Each byte is decoded once however the body arrives: `scanned`
/// remembers how far the buffer's readable bytes have been read.
public struct ChunkedLookahead {
    private var decoder: ChunkedDecoder
    private var scanned = 0
    public private(set) var complete = false

    /// `decoder` is the exchange's own decoder before any byte of the body went through it.
    public init(_ decoder: ChunkedDecoder) {
        self.decoder = decoder
    }

    /// Whether the body ends within `buffer` (whose reader index must not move in between
    /// calls). Throws what the real decoder will throw for a malformed body.
    public mutating func isComplete(_ buffer: ByteBuffer) throws(HTTPParseError) -> Bool {
        guard !complete, buffer.readableBytes > scanned else { return complete }
        var rest = buffer.getSlice(at: buffer.readerIndex + scanned, length: buffer.readableBytes - scanned)!
        let before = rest.readableBytes
        defer { scanned += before - rest.readableBytes }
        while let event = try decoder.next(&rest) {
            if case .end = event {
                complete = true
                return true
            }
        }
        return false
    }
}

/// SPEC §3 `limits.body_timeout`: "408 when a request body makes no progress this long". Only
/// time the client owes bytes counts: while the proxy itself holds reading back (the upstream
/// is not taking the body, the pool has no connection yet, a log record is being written), the
/// clock stops and starts afresh when reading resumes. Checked by the loop's sweep.
public struct BodyProgressClock {
    /// Since when the proxy has been waiting for body bytes, moved forward by each arrival.
    private var since: NIODeadline?

    /// `waitingForClient`: a body is incomplete and the proxy wants its bytes. `lastActivity`:
    /// when bytes last arrived from the client. True when the body made no progress for longer
    /// than `timeout`.
    public init() {}

    public mutating func expired(now: NIODeadline, waitingForClient: Bool, lastActivity: NIODeadline, timeout: TimeAmount) -> Bool {
        guard waitingForClient else {
            since = nil
            return false
        }
        let start = max(since ?? now, lastActivity)
        since = start
        return now - start > timeout
    }
}
