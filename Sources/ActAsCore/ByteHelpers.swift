/// The UTF-8 bytes of `string` as a buffer: direct for native strings (the usual case), via a
/// contiguous copy otherwise. Byte loops over a buffer are several times faster than over
/// `String.UTF8View`, which matters on the per-request paths.
@inline(__always)
func withUTF8Bytes<Result>(_ string: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
    if let result = string.utf8.withContiguousStorageIfAvailable(body) { return result }
    var string = string
    return string.withUTF8(body)
}

/// Whether `bytes` equals the lower-case ASCII `lowercased`, ignoring ASCII case.
@inline(__always)
func equalsIgnoringASCIICase(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercased: StaticString) -> Bool {
    guard bytes.count == lowercased.utf8CodeUnitCount else { return false }
    let expected = lowercased.utf8Start
    for index in 0..<bytes.count where asciiLower(bytes[index]) != expected[index] { return false }
    return true
}

/// Lower-case hex digits without a table or branches, eight at a time: request ids and log
/// hashes are written for every request.
public enum LowerHex {
    /// Writes the 16 digits of `value`, most significant first, to `target` (any alignment).
    @inlinable
    public static func store(_ value: UInt64, to target: UnsafeMutableRawPointer) {
        target.storeBytes(of: digits(UInt32(truncatingIfNeeded: value >> 32)).bigEndian, toByteOffset: 0, as: UInt64.self)
        target.storeBytes(of: digits(UInt32(truncatingIfNeeded: value)).bigEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// The eight digits of `value` as the bytes of an integer, the most significant digit in the
    /// most significant byte.
    @inlinable
    static func digits(_ value: UInt32) -> UInt64 {
        // Spread the nibbles into bytes: 0x12345678 → 0x0102030405060708.
        var spread = UInt64(value)
        spread = (spread | spread << 16) & 0x0000_FFFF_0000_FFFF
        spread = (spread | spread << 8) & 0x00FF_00FF_00FF_00FF
        spread = (spread | spread << 4) & 0x0F0F_0F0F_0F0F_0F0F
        // Bytes of 10 and more get 0x27 more, which turns `0` + 10 into `a`.
        let letters = ((spread &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        return spread &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
    }
}
