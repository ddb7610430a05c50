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

    /// Writes the next id into a fixed 32-byte array.
    mutating func next() -> RequestID {
        counter &+= 1
        return RequestID(high: prefix, low: counter)
    }
}

struct RequestID: Sendable, Equatable {
    var high: UInt64
    var low: UInt64

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    func write(into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 32) { out in
            writeHex(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<32]))
            return 32
        }
    }

    var string: String {
        String(unsafeUninitializedCapacity: 32) { out in
            writeHex(into: UnsafeMutableRawBufferPointer(out))
            return 32
        }
    }

    /// 32 lower-case hex digits: `high` then `low`.
    private func writeHex(into out: UnsafeMutableRawBufferPointer) {
        Self.hexDigits.withUnsafeBufferPointer { digits in
            var value = high
            for i in stride(from: 15, through: 0, by: -1) {
                out[i] = digits[Int(value & 0xF)]
                value >>= 4
            }
            value = low
            for i in stride(from: 31, through: 16, by: -1) {
                out[i] = digits[Int(value & 0xF)]
                value >>= 4
            }
        }
    }
}
