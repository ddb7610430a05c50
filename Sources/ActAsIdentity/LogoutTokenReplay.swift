import Foundation

/// Back-channel logout tokens seen, by `jti`, so a replayed token is refused (OpenID Connect
/// Back-Channel Logout 1.0 §2.6 lets a receiver refuse a `jti` it has seen). Each is kept
/// until it can no longer be accepted anyway: its `exp`, or `iat` + `maxAge`, whichever is
/// sooner (a token older than that is refused by its `iat`). Bounded: past `capacity` the
/// entries that expire soonest are dropped first.
public struct LogoutTokenReplay: Sendable {
    /// How old (by `iat`) a logout token may be; tokens are sent at once, so this is generous.
    public static let maxAge: TimeInterval = 600
    public static let capacity = 10_000
    private var seen: [String: Date] = [:]
    public let capacity: Int

    public init(capacity: Int = Self.capacity) { self.capacity = capacity }

    public var count: Int { seen.count }

    /// True when `jti` was not seen (and records it until `until`); false for a replay.
    public mutating func admit(jti: String, until: Date, now: Date) -> Bool {
        seen = seen.filter { $0.value > now }
        if seen[jti] != nil { return false }
        if seen.count >= capacity {
            for (key, _) in seen.sorted(by: { $0.value < $1.value }).prefix(seen.count - capacity + 1) { seen[key] = nil }
        }
        seen[jti] = until
        return true
    }
}
