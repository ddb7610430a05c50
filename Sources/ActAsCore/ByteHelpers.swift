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
