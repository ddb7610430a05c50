import ActAsCore
import Testing

@Suite struct LowerHexTests {
    static func expected(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    @Test func sixteenDigitsMostSignificantFirst() {
        var generator = SystemRandomNumberGenerator()
        let values: [UInt64] = [0, 1, 9, 10, 15, 16, 0xA0, 0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210, .max]
            + (0..<2000).map { _ in generator.next() }
        for value in values {
            var out = [UInt8](repeating: 0, count: 16)
            out.withUnsafeMutableBytes { LowerHex.store(value, to: $0.baseAddress!) }
            #expect(String(decoding: out, as: UTF8.self) == Self.expected(value))
        }
    }
}
