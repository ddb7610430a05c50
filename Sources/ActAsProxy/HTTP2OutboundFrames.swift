import NIOCore

/// Watches the frames NIOHTTP2 writes, below it on an h2 connection (a frame header is 9 bytes:
/// length, type, flags, stream), for two things NIOHTTP2 does not offer:
/// - the first SETTINGS frame advertises `h2_max_concurrent_streams`, while NIOHTTP2 is
///   configured with more (HTTP2Connection.enforcedByNIOHTTP2) so that a stream past the
///   advertised limit is a stream error (REFUSED_STREAM), as RFC 9113 §5.1.2 requires, and
///   not NIOHTTP2's connection error;
/// - a GOAWAY with an error code (a connection error: a flood, a protocol violation) closes
///   the connection once it is flushed. NIOHTTP2 only writes the GOAWAY, and a peer that
///   ignores it could go on sending frames.
final class HTTP2OutboundFrames: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    static let settingsType: UInt8 = 0x4
    static let goAwayType: UInt8 = 0x7
    static let maxConcurrentStreamsID: UInt16 = 0x3

    private let advertisedMaxConcurrentStreams: UInt32
    private var settingsAdvertised = false
    /// The part of a frame header seen so far, when a write ended inside one.
    private var partialHeader: [UInt8] = []
    /// Payload bytes of the current frame still to come.
    private var remainingPayload = 0
    private var closeAfterFlush = false

    init(advertisedMaxConcurrentStreams: Int) {
        self.advertisedMaxConcurrentStreams = UInt32(clamping: advertisedMaxConcurrentStreams)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(var buffer) = unwrapOutboundIn(data) else {
            return context.write(data, promise: promise)
        }
        scan(&buffer)
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        if closeAfterFlush {
            closeAfterFlush = false
            context.close(promise: nil)
        }
    }

    /// Walks the frame boundaries in `buffer` (frames may span writes).
    func scan(_ buffer: inout ByteBuffer) {
        var index = buffer.readerIndex
        let end = buffer.writerIndex
        while index < end {
            if remainingPayload > 0 {
                let skip = min(remainingPayload, end - index)
                index += skip
                remainingPayload -= skip
                continue
            }
            let take = min(9 - partialHeader.count, end - index)
            partialHeader += buffer.getBytes(at: index, length: take)!
            index += take
            guard partialHeader.count == 9 else { return }
            let length = Int(partialHeader[0]) << 16 | Int(partialHeader[1]) << 8 | Int(partialHeader[2])
            let type = partialHeader[3]
            let flags = partialHeader[4]
            partialHeader.removeAll(keepingCapacity: true)
            remainingPayload = length
            if type == Self.settingsType, flags & 0x1 == 0, !settingsAdvertised, index + length <= end {
                settingsAdvertised = true
                advertise(in: &buffer, payloadAt: index, length: length)
            } else if type == Self.goAwayType {
                // The error code is the payload's second word; unreadable here means not NO_ERROR.
                let code = index + 8 <= end ? buffer.getInteger(at: index + 4, as: UInt32.self) : nil
                if code != 0 { closeAfterFlush = true }
            }
        }
    }

    private func advertise(in buffer: inout ByteBuffer, payloadAt start: Int, length: Int) {
        var entry = start
        while entry + 6 <= start + length {
            if buffer.getInteger(at: entry, as: UInt16.self) == Self.maxConcurrentStreamsID {
                buffer.setInteger(advertisedMaxConcurrentStreams, at: entry + 2)
            }
            entry += 6
        }
    }
}
