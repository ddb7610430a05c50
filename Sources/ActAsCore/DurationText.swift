import Foundation

/// Durations as people type them into the API and forms: `90s`, `30m`, `1h30m`, `2h`, `1d`.
public enum DurationText {
    /// Parses one or more `<digits><unit>` parts, units `d`, `h`, `m`, `s`, each at most once
    /// and largest first (`1h30m`, not `30m1h`). No signs, spaces, fractions or upper case:
    /// anything unexpected is refused rather than guessed at. The total must be at least one
    /// second and fit in 64 bits.
    public static func parse(_ text: String) throws(InvalidInput) -> TimeInterval {
        guard let seconds = seconds(text) else { throw .duration }
        return TimeInterval(seconds)
    }

    /// Whole seconds, or nil when `text` is not a valid duration.
    public static func seconds(_ text: String) -> Int64? {
        var total: Int64 = 0
        var number: Int64 = 0
        var digitsSeen = false
        var lastUnitSize = Int64.max
        for byte in text.utf8 {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                let (shifted, overflowed) = number.multipliedReportingOverflow(by: 10)
                guard !overflowed else { return nil }
                let (sum, overflowedAgain) = shifted.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
                guard !overflowedAgain else { return nil }
                number = sum
                digitsSeen = true
                continue
            }
            let unitSize: Int64
            switch byte {
            case UInt8(ascii: "d"): unitSize = 86_400
            case UInt8(ascii: "h"): unitSize = 3_600
            case UInt8(ascii: "m"): unitSize = 60
            case UInt8(ascii: "s"): unitSize = 1
            default: return nil
            }
            guard digitsSeen, unitSize < lastUnitSize else { return nil }
            let (part, overflowed) = number.multipliedReportingOverflow(by: unitSize)
            guard !overflowed else { return nil }
            let (sum, overflowedAgain) = total.addingReportingOverflow(part)
            guard !overflowedAgain else { return nil }
            total = sum
            number = 0
            digitsSeen = false
            lastUnitSize = unitSize
        }
        // Trailing digits without a unit ("90") are refused: "90" seconds or minutes?
        guard !digitsSeen, total >= 1 else { return nil }
        return total
    }
}
