/// The proxy's id for one exchange (`X-Request-Id`, the log's `request_id`): 128 bits, written
/// as 32 lower-case hex digits.
public struct RequestID: Sendable, Equatable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public static let hexLength = 32

    public var string: String {
        String(unsafeUninitializedCapacity: Self.hexLength) { out in
            writeHex(into: UnsafeMutableRawBufferPointer(out))
            return Self.hexLength
        }
    }

    /// Writes the 32 hex digits, `high` then `low`, into the first 32 bytes of `out`.
    public func writeHex(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.hexLength)
        LowerHex.store(high, to: out.baseAddress!)
        LowerHex.store(low, to: out.baseAddress! + 16)
    }
}
