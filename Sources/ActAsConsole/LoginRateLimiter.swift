import Foundation
import Synchronization

/// Who is trying to sign in, as the throttle sees it.
public struct SignInAttempt: Sendable, Equatable {
    /// The username as typed (compared case-insensitively).
    public var account: String
    /// The client address (after `trusted_proxies`).
    public var address: String
    /// The device id of a valid `__Host-actas_device` cookie issued to this browser at an
    /// earlier successful sign-in to `account`, or nil.
    public var device: String?

    public init(account: String, address: String, device: String? = nil) {
        self.account = account
        self.address = address
        self.device = device
    }
}

/// Throttles password guesses without letting a stranger lock the owner out (OWASP "device
/// cookies", plus per-network buckets):
///
/// - Failures are counted per account *and* client network (IPv4 /24, IPv6 /64), or per account
///   and device for a browser holding that account's device cookie. A bucket's first
///   `maxPerAccount` failures are free; after that each attempt waits `2^(extra failures)`
///   seconds after the last one, capped at `window`: a slow-down, not a lock. A success empties
///   the bucket; a bucket untouched for `window` is forgotten.
/// - An attacker hammering an account therefore slows only their own networks' (or devices')
///   buckets: the owner, from another network or with their device cookie, keeps a full budget.
/// - Failures per client address are also capped (`maxPerAddress` within `window`, then `429`
///   until the window ends) against password spraying over many accounts; a browser with the
///   account's device cookie is exempt (its own bucket still applies).
///
/// Attempts are counted *before* the password is checked (parallel guesses cannot all slip in
/// before a failure is counted), and a throttled attempt is answered without checking the
/// password at all (guessing costs the attacker time, not us scrypt work). Known and unknown
/// accounts are counted alike, so the answers say nothing about which exist.
public final class LoginRateLimiter: Sendable {
    struct Bucket: Equatable {
        var failures: Int
        var last: Date
    }

    struct Counter {
        var failures: Int
        var windowStart: Date
    }

    struct Limits {
        var maxPerAccount: Int
        var maxPerAddress: Int
        var window: TimeInterval
    }

    struct State {
        var limits: Limits
        var buckets: [String: Bucket] = [:]
        var byAddress: [String: Counter] = [:]
    }

    private let state: Mutex<State>

    public init(maxPerAccount: Int, maxPerAddress: Int, window: TimeInterval) {
        state = Mutex(State(limits: Limits(maxPerAccount: maxPerAccount, maxPerAddress: maxPerAddress, window: window)))
    }

    /// SIGHUP: new limits for the next attempt; what was counted so far stays.
    public func update(maxPerAccount: Int, maxPerAddress: Int, window: TimeInterval) {
        state.withLock { $0.limits = Limits(maxPerAccount: maxPerAccount, maxPerAddress: maxPerAddress, window: window) }
    }

    /// Most tracked keys per table; past that the oldest are forgotten, so a spray of usernames
    /// or addresses costs bounded memory and time.
    static let maxTracked = 50_000

    /// Starts an attempt: counts it as a failure until `succeeded` says otherwise, or returns the
    /// seconds to wait (for `Retry-After`) when its bucket or its address must wait.
    public func begin(_ attempt: SignInAttempt, now: Date) -> Int? {
        state.withLock { state in
            let limits = state.limits
            let bucketKey = Self.bucketKey(attempt)
            let addressKey = Self.addressKey(attempt.address)
            var wait: TimeInterval = 0
            if let bucket = Self.live(state.buckets[bucketKey], now: now, window: limits.window) {
                let delay = Self.delay(failures: bucket.failures, free: limits.maxPerAccount, cap: limits.window)
                wait = max(wait, bucket.last.addingTimeInterval(delay).timeIntervalSince(now))
            }
            if attempt.device == nil,
               let counter = Self.live(state.byAddress[addressKey], now: now, window: limits.window),
               counter.failures >= limits.maxPerAddress {
                wait = max(wait, limits.window - now.timeIntervalSince(counter.windowStart))
            }
            if wait > 0 { return max(1, Int(wait.rounded(.up))) }
            var bucket = Self.live(state.buckets[bucketKey], now: now, window: limits.window) ?? Bucket(failures: 0, last: now)
            bucket.failures += 1
            bucket.last = now
            Self.store(&state.buckets, bucketKey, bucket, now: now, window: limits.window, since: \.last)
            if attempt.device == nil {
                var counter = Self.live(state.byAddress[addressKey], now: now, window: limits.window) ?? Counter(failures: 0, windowStart: now)
                counter.failures += 1
                Self.store(&state.byAddress, addressKey, counter, now: now, window: limits.window, since: \.windowStart)
            }
            return nil
        }
    }

    /// The attempt failed (after the password check, which takes a while): its bucket's wait
    /// counts from now, so the check's own time is not subtracted from the slow-down.
    public func failed(_ attempt: SignInAttempt, now: Date) {
        state.withLock { state in
            let key = Self.bucketKey(attempt)
            if var bucket = state.buckets[key], bucket.last < now {
                bucket.last = now
                state.buckets[key] = bucket
            }
        }
    }

    /// The attempt succeeded: its bucket starts afresh and the address gets its attempt back.
    public func succeeded(_ attempt: SignInAttempt) {
        state.withLock { state in
            state.buckets.removeValue(forKey: Self.bucketKey(attempt))
            guard attempt.device == nil else { return }
            let key = Self.addressKey(attempt.address)
            if var counter = state.byAddress[key] {
                counter.failures -= 1
                state.byAddress[key] = counter.failures > 0 ? counter : nil
            }
        }
    }

    var trackedBuckets: Int { state.withLock { $0.buckets.count } }

    // MARK: pure rules

    /// Seconds to wait after the last failure of a bucket with `failures` failures: none for the
    /// first `free`, then 1, 2, 4, … seconds, at most `cap`.
    static func delay(failures: Int, free: Int, cap: TimeInterval) -> TimeInterval {
        let extra = failures - free
        guard extra >= 0 else { return 0 }
        return min(pow(2, Double(min(extra, 40))), cap)
    }

    static func bucketKey(_ attempt: SignInAttempt) -> String {
        let account = attempt.account.lowercased()
        if let device = attempt.device { return "device \(device) \(account)" }
        return "network \(networkKey(attempt.address)) \(account)"
    }

    /// The client's network: IPv4 /24 (one attacker's addresses usually sit together, in one
    /// cloud or hosting range, while the owner's home, office or phone network is another
    /// /24), IPv6 /64 (one customer's allocation; rotating within it is free).
    static func networkKey(_ address: String) -> String {
        if address.contains(":") { return addressKey(address) }
        let octets = address.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return address }
        return octets.prefix(3).joined(separator: ".") + ".0/24"
    }

    /// One address: IPv4 as is, IPv6 by its /64, so one client cannot rotate through addresses.
    static func addressKey(_ address: String) -> String {
        guard address.contains(":") else { return address }
        let parts = address.components(separatedBy: "::")
        guard parts.count <= 2 else { return address }
        let head = parts[0].split(separator: ":").map(String.init)
        let tail = parts.count > 1 ? parts[1].split(separator: ":").map(String.init) : []
        let full = head + Array(repeating: "0", count: max(0, 8 - head.count - tail.count)) + tail
        return full.prefix(4).map { $0.lowercased() }.joined(separator: ":") + "::/64"
    }

    static func live<Entry>(_ entry: Entry?, now: Date, window: TimeInterval, since: KeyPath<Entry, Date>) -> Entry? {
        guard let entry, now.timeIntervalSince(entry[keyPath: since]) < window else { return nil }
        return entry
    }

    static func live(_ bucket: Bucket?, now: Date, window: TimeInterval) -> Bucket? {
        live(bucket, now: now, window: window, since: \.last)
    }

    static func live(_ counter: Counter?, now: Date, window: TimeInterval) -> Counter? {
        live(counter, now: now, window: window, since: \.windowStart)
    }

    static func store<Entry>(
        _ table: inout [String: Entry], _ key: String, _ entry: Entry, now: Date, window: TimeInterval, since: KeyPath<Entry, Date>
    ) {
        if table[key] == nil, table.count >= maxTracked {
            table = table.filter { now.timeIntervalSince($0.value[keyPath: since]) < window }
            if table.count >= maxTracked {
                // Still full of live entries: keep the newest half (amortised O(1) per insert).
                let keep = table.sorted { $0.value[keyPath: since] > $1.value[keyPath: since] }.prefix(maxTracked / 2)
                table = Dictionary(keep.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
            }
        }
        table[key] = entry
    }
}
