import Foundation
import Synchronization

/// Failed sign-ins counted per account and per client address in a fixed window; past the
/// limit, sign-in answers `429` without checking the password (so guessing costs the
/// attacker time, not us scrypt work).
public final class LoginRateLimiter: Sendable {
    struct Counter {
        var failures: Int
        var windowStart: Date
    }

    struct Counters {
        var byAccount: [String: Counter] = [:]
        var byAddress: [String: Counter] = [:]
    }

    let maxPerAccount: Int
    let maxPerAddress: Int
    let window: TimeInterval
    private let counters = Mutex(Counters())

    public init(maxPerAccount: Int, maxPerAddress: Int, window: TimeInterval) {
        self.maxPerAccount = maxPerAccount
        self.maxPerAddress = maxPerAddress
        self.window = window
    }

    /// Most tracked keys per table; past that the oldest windows are forgotten, so a spray of
    /// usernames or addresses costs bounded memory and time.
    static let maxTracked = 50_000

    /// Starts an attempt: counts it against the account and the address *before* the password
    /// is checked (so parallel guesses cannot all slip in before any failure is counted), or
    /// returns the seconds to wait when either is over its limit.
    public func begin(account: String, address: String, now: Date) -> Int? {
        counters.withLock { counters in
            var wait: TimeInterval = 0
            if let counter = Self.live(counters.byAccount[account.lowercased()], now: now, window: window), counter.failures >= maxPerAccount {
                wait = max(wait, window - now.timeIntervalSince(counter.windowStart))
            }
            if let counter = Self.live(counters.byAddress[Self.addressKey(address)], now: now, window: window), counter.failures >= maxPerAddress {
                wait = max(wait, window - now.timeIntervalSince(counter.windowStart))
            }
            if wait > 0 { return Int(wait.rounded(.up)) }
            Self.bump(&counters.byAccount, account.lowercased(), now: now, window: window)
            Self.bump(&counters.byAddress, Self.addressKey(address), now: now, window: window)
            return nil
        }
    }

    /// The attempt succeeded: the account starts afresh and the address gets its attempt back.
    public func succeeded(account: String, address: String) {
        counters.withLock { counters in
            counters.byAccount.removeValue(forKey: account.lowercased())
            let key = Self.addressKey(address)
            if var counter = counters.byAddress[key] {
                counter.failures -= 1
                counters.byAddress[key] = counter.failures > 0 ? counter : nil
            }
        }
    }

    var trackedAccounts: Int { counters.withLock { $0.byAccount.count } }

    /// IPv6 clients get a /64 each, so one attacker cannot rotate through addresses.
    static func addressKey(_ address: String) -> String {
        guard address.contains(":") else { return address }
        let groups = address.split(separator: ":", omittingEmptySubsequences: false)
        if address.contains("::") || groups.count < 8 {
            // Expand `::` to compare prefixes reliably.
            let parts = address.components(separatedBy: "::")
            let head = parts[0].split(separator: ":").map(String.init)
            let tail = parts.count > 1 ? parts[1].split(separator: ":").map(String.init) : []
            let full = head + Array(repeating: "0", count: max(0, 8 - head.count - tail.count)) + tail
            return full.prefix(4).joined(separator: ":") + "::/64"
        }
        return groups.prefix(4).joined(separator: ":") + "::/64"
    }

    static func live(_ counter: Counter?, now: Date, window: TimeInterval) -> Counter? {
        guard let counter, now.timeIntervalSince(counter.windowStart) < window else { return nil }
        return counter
    }

    static func bump(_ table: inout [String: Counter], _ key: String, now: Date, window: TimeInterval) {
        if var counter = live(table[key], now: now, window: window) {
            counter.failures += 1
            table[key] = counter
            return
        }
        if table.count >= maxTracked {
            table = table.filter { now.timeIntervalSince($0.value.windowStart) < window }
            if table.count >= maxTracked {
                // Still full of live windows: drop the oldest half (amortised O(1) per insert).
                let keep = table.sorted { $0.value.windowStart > $1.value.windowStart }.prefix(maxTracked / 2)
                table = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
        }
        table[key] = Counter(failures: 1, windowStart: now)
    }
}
