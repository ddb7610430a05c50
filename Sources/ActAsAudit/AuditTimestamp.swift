#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ActAsCore
import Foundation

/// A wall-clock instant with millisecond precision, written as RFC 3339 UTC
/// (`2026-11-06T10:15:23.123Z`). A plain integer so the event loop can stamp records cheaply.
public struct AuditTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    public init(_ date: Date) {
        self.millisecondsSinceEpoch = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// Now, from `CLOCK_REALTIME` (no Foundation on the hot path).
    public static func now() -> AuditTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return AuditTimestamp(millisecondsSinceEpoch: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }

    public var date: Date { Date(timeIntervalSince1970: Double(millisecondsSinceEpoch) / 1000) }

    public static func < (lhs: AuditTimestamp, rhs: AuditTimestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    public var description: String { rfc3339 }

    public var rfc3339: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        write(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS.mmmZ` (civil-from-days, proleptic Gregorian).
    func write(into out: inout [UInt8]) {
        out.appendShortRun { write(into: &$0) }
    }

    /// Exactly 24 bytes.
    func write(into run: inout ShortRun) {
        let milliseconds = millisecondsSinceEpoch
        var seconds = milliseconds / 1000
        var millis = milliseconds % 1000
        if millis < 0 {
            millis += 1000
            seconds -= 1
        }
        let civil = RFC3339.fields(seconds: seconds)
        let fields = (civil.year, civil.month, civil.day, civil.hour, civil.minute, civil.second, millis)
        run.put(length: 24) { out in
            @inline(__always) func two(_ value: Int64, at position: Int) {
                out[position] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10)
                out[position + 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
            }
            two(fields.0 / 100, at: 0)
            two(fields.0 % 100, at: 2)
            out[4] = UInt8(ascii: "-")
            two(fields.1, at: 5)
            out[7] = UInt8(ascii: "-")
            two(fields.2, at: 8)
            out[10] = UInt8(ascii: "T")
            two(fields.3, at: 11)
            out[13] = UInt8(ascii: ":")
            two(fields.4, at: 14)
            out[16] = UInt8(ascii: ":")
            two(fields.5, at: 17)
            out[19] = UInt8(ascii: ".")
            out[20] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: fields.6 / 100)
            two(fields.6 % 100, at: 21)
            out[23] = UInt8(ascii: "Z")
        }
    }

    /// What `audit export --from/--to` and the log accept (`RFC3339` in ActAsCore): a date
    /// `2026-11-01` (midnight UTC) or an RFC 3339 time with an optional fraction and offset.
    public static func parse(_ text: String) -> AuditTimestamp? {
        RFC3339.milliseconds(from: text).map(AuditTimestamp.init(millisecondsSinceEpoch:))
    }
}
