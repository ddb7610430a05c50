import Foundation
import Testing
@testable import ActAsCore

@Suite struct DurationTextTests {
    @Test(arguments: [
        ("90s", 90), ("30m", 1_800), ("2h", 7_200), ("1d", 86_400), ("1h30m", 5_400), ("1d2h3m4s", 93_784),
        ("0h1s", 1), ("1s", 1), ("0030m", 1_800), ("48h", 172_800), ("9223372036854775807s", Int64.max),
    ] as [(String, Int64)])
    func valid(text: String, seconds: Int64) throws {
        #expect(DurationText.seconds(text) == seconds)
        #expect(try DurationText.parse(text) == TimeInterval(seconds))
    }

    @Test(arguments: [
        "", "0s", "0h0m", "-5m", "+5m", "5", "1h30", "m", "h1", "1h1h", "30m1h", "1.5h", "1H", " 1h", "1h ", "1 h",
        "1w", "1ms", "1y", "one hour", "1h-1m", "9223372036854775808s", "999999999999999999d", "106751991167301d",
        "106751991167300d86401s", "١h",
    ])
    func invalid(text: String) {
        #expect(DurationText.seconds(text) == nil)
        #expect(throws: InvalidInput.duration) { try DurationText.parse(text) }
    }

    @Test func errorIsTheContractCode() {
        #expect(InvalidInput.duration.code == "invalid_duration")
        #expect(InvalidInput.duration.httpStatus == 400)
    }
}
