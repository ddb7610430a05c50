import ActAsCore
import Foundation
import Testing

/// The product's one RFC 3339 implementation (log timestamps, export windows, import dates,
/// times shown and sent).
@Suite struct RFC3339Tests {
    static func foundation(_ date: Date, fraction: Bool) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = fraction ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        return formatter.string(from: date)
    }

    @Test(arguments: [Int64(0), 1, 999, 1_000, 86_399_999, 951_782_400_000, 1_793_527_523_123, 4_102_444_799_999, -1, -86_400_001,
                      253_402_300_799_999])
    func writesWhatFoundationWrites(milliseconds: Int64) {
        let date = RFC3339.date(milliseconds: milliseconds)
        #expect(RFC3339.string(milliseconds: milliseconds, fraction: true) == Self.foundation(date, fraction: true))
        #expect(RFC3339.string(milliseconds: milliseconds, fraction: false) == Self.foundation(date, fraction: false))
        #expect(RFC3339.string(from: date) == Self.foundation(date, fraction: false))
    }

    @Test func everyDayOfFourHundredYearsRoundTrips() {
        // A Gregorian cycle, day by day at a varying time of day.
        let start = RFC3339.days(fromYear: 1970, month: 1, day: 1)
        for day in start..<(start + 146_097) {
            let milliseconds = day * 86_400_000 + (day % 86_400) * 1000 + day % 1000
            let text = RFC3339.string(milliseconds: milliseconds, fraction: true)
            #expect(RFC3339.milliseconds(from: text) == milliseconds, "\(text)")
        }
    }

    @Test(arguments: [
        ("2026-11-01", "2026-11-01T00:00:00.000Z"),
        ("2028-02-29", "2028-02-29T00:00:00.000Z"),
        ("2000-02-29T12:00:00Z", "2000-02-29T12:00:00.000Z"),
        ("2026-11-01T10:15:23Z", "2026-11-01T10:15:23.000Z"),
        ("2026-11-01T10:15:23.123Z", "2026-11-01T10:15:23.123Z"),
        ("2026-11-01T10:15:23.1239999Z", "2026-11-01T10:15:23.123Z"),
        ("2026-11-01t10:15:23.5z", "2026-11-01T10:15:23.500Z"),
        ("2026-11-01 10:15:23Z", "2026-11-01T10:15:23.000Z"),
        ("2026-11-01T10:15:23-05:00", "2026-11-01T15:15:23.000Z"),
        ("2026-11-06T11:15:00+01:00", "2026-11-06T10:15:00.000Z"),
        ("2026-12-31T23:59:60Z", "2026-12-31T23:59:59.000Z"),
    ])
    func parses(text: String, expected: String) {
        let milliseconds = RFC3339.milliseconds(from: text)
        #expect(milliseconds.map { RFC3339.string(milliseconds: $0, fraction: true) } == expected)
    }

    @Test(arguments: ["", "2026-02-30", "2026-02-29", "1900-02-29", "2026-00-10", "2026-13-01", "2026-1-1", "26-11-01",
                      "2026-11-01T25:00:00Z", "2026-11-01T10:00:00", "2026-11-01 10:00:00", "2026-11-01X", " 2026-11-01",
                      "2026-11-01 ", "2026-11-01T10:00:60Z", "2026-11-01T10:60:00Z", "2026-02-30T10:00:00Z",
                      "2026-04-31T00:00:00+02:00", "2026-11-01T10:00:00.Z", "2026-11-01T10:00:00+0100",
                      "2026-11-01T10:00:00+24:00", "2026-11-01T10:00Z", "２０２６-11-01", "2026-11-01T10:00:00ZZ"])
    func refuses(text: String) {
        #expect(RFC3339.milliseconds(from: text) == nil)
        #expect(RFC3339.date(from: text) == nil)
    }

    @Test func theDateIsTheOneFoundationParses() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for text in ["2026-11-01T10:15:23.123Z", "2026-11-01T10:15:23.001Z", "1999-12-31T23:59:59.999Z"] {
            #expect(RFC3339.date(from: text) == formatter.date(from: text), "\(text)")
        }
    }
}
