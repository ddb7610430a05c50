import ActAsCore
import NIOCore

/// Request ids: 32 lowercase hex digits, unique across event loops and restarts without
/// coordination: a random 64-bit prefix per generator (one per event loop) and a counter.
struct RequestIDGenerator {
    private let prefix: UInt64
    private var counter: UInt64

    init() {
        prefix = UInt64.random(in: .min ... .max)
        counter = UInt64.random(in: 0...(1 << 32))
    }

    mutating func next() -> RequestID {
        counter &+= 1
        return RequestID(high: prefix, low: counter)
    }
}

extension RequestID {
    func write(into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.hexLength) { out in
            writeHex(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<Self.hexLength]))
            return Self.hexLength
        }
    }
}
