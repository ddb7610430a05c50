import ActAsCore
import Testing

@Suite("Percent decoding")
struct PercentEncodingTests {
    @Test(arguments: [
        ("pass%77ord", false, "password"),
        ("a+b%2Bc", true, "a b+c"),
        ("a+b", false, "a+b"),
        ("%%41", false, "%A"),       // a lone % stays; what follows is still decoded
        ("%+", true, "% "),
        ("%4", false, "%4"),
        ("%zz%41", false, "%zzA"),
        ("100%25", false, "100%"),
        ("%252e", false, "%2e"),     // one round only
        ("", false, ""),
    ])
    func decodes(input: String, plusAsSpace: Bool, expected: String) {
        #expect(PercentEncoding.decodeString(Array(input.utf8), plusAsSpace: plusAsSpace) == expected)
    }

    @Test func hexDigits() {
        #expect(PercentEncoding.hexValue(UInt8(ascii: "f")) == 15)
        #expect(PercentEncoding.hexValue(UInt8(ascii: "F")) == 15)
        #expect(PercentEncoding.hexValue(UInt8(ascii: "0")) == 0)
        #expect(PercentEncoding.hexValue(UInt8(ascii: "g")) == nil)
    }
}
