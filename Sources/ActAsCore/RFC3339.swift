import Foundation

/// RFC 3339 times, the product's one implementation: the request log's `ts`, `audit export
/// --from/--to`, user import's `last_login`, and every time shown or sent (console, CLI JSON,
/// identity headers). Always written in UTC with `Z`; read with any offset.
///
/// Accepted: a date `2026-11-01` (midnight UTC), or `2026-11-06T10:15:23Z` with an optional
/// fraction (kept to the millisecond) and a `Z` or `±HH:MM` offset; `t`, `z` and a space
/// separator are accepted too (RFC 3339 §5.6's notes). The date must exist as written
/// (`2026-02-30` is refused, not rolled over); second 60 only as a leap second (23:59:60),
/// read as 23:59:59.
public enum RFC3339 {
    /// Milliseconds since the Unix epoch, or nil when `text` is not such a time.
    public static func milliseconds(from text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int64? {
            guard index + digits <= bytes.count else { return nil }
            var value: Int64 = 0
            for offset in 0..<digits {
                let byte = bytes[index + offset]
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            index += digits
            return value
        }
        func expect(_ character: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == character else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect(UInt8(ascii: "-")), let month = number(2), expect(UInt8(ascii: "-")),
            let day = number(2), (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month)
        else { return nil }
        let dayNumber = days(fromYear: year, month: month, day: day)
        if index == bytes.count { return dayNumber * 86_400_000 }
        guard index < bytes.count, [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(bytes[index])
        else { return nil }
        index += 1
        guard let hour = number(2), expect(UInt8(ascii: ":")), let minute = number(2), expect(UInt8(ascii: ":")),
            let second = number(2), hour < 24, minute < 60, second < 60 || (second == 60 && hour == 23 && minute == 59)
        else { return nil }
        var millis: Int64 = 0
        if expect(UInt8(ascii: ".")) {
            var digits = 0
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                if digits < 3 { millis = millis * 10 + Int64(bytes[index] - 0x30) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        var offsetSeconds: Int64 = 0
        if expect(UInt8(ascii: "Z")) || expect(UInt8(ascii: "z")) {
            offsetSeconds = 0
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign: Int64 = bytes[index] == UInt8(ascii: "+") ? 1 : -1
            index += 1
            guard let offsetHours = number(2), expect(UInt8(ascii: ":")), let offsetMinutes = number(2),
                offsetHours < 24, offsetMinutes < 60
            else { return nil }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        let seconds = dayNumber * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offsetSeconds
        return seconds * 1000 + millis
    }

    public static func date(from text: String) -> Date? {
        milliseconds(from: text).map(date(milliseconds:))
    }

    /// The instant as `Date` (seconds and milliseconds added as such, so `…23.123Z` is the
    /// same `Date` Foundation's ISO 8601 parser gives).
    public static func date(milliseconds: Int64) -> Date {
        let (seconds, millis) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        return Date(timeIntervalSince1970: Double(seconds) + Double(millis) / 1000)
    }

    /// `2026-11-06T10:15:23.123Z`, or without the fraction (`2026-11-06T10:15:23Z`: whole
    /// seconds, the fraction dropped).
    public static func string(milliseconds: Int64, fraction: Bool) -> String {
        var seconds = milliseconds / 1000
        var millis = milliseconds % 1000
        if millis < 0 {
            millis += 1000
            seconds -= 1
        }
        let fields = fields(seconds: seconds)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let year = String(fields.year)
        var text = String(repeating: "0", count: max(0, 4 - year.count)) + year
        text += "-\(two(fields.month))-\(two(fields.day))T\(two(fields.hour)):\(two(fields.minute)):\(two(fields.second))"
        if fraction { text += "." + String(millis + 1000).dropFirst() }
        return text + "Z"
    }

    /// Whole seconds, as the console, the CLI's JSON and the identity headers show times.
    public static func string(from date: Date, fraction: Bool = false) -> String {
        string(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)), fraction: fraction)
    }

    /// UTC calendar fields of a second since the epoch; the year clamped to 0…9999.
    @inlinable
    public static func fields(seconds: Int64) -> (year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64) {
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civil(fromDays: days)
        return (min(max(year, 0), 9999), month, day, secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60)
    }

    /// Howard Hinnant's `civil_from_days` (proleptic Gregorian).
    @inlinable
    public static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Howard Hinnant's `days_from_civil`.
    public static func days(fromYear year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
