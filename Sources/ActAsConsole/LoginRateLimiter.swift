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

    /// Seconds to wait when the account or the address is over its limit; nil when allowed.
    public func retryAfter(account: String, address: String, now: Date) -> Int? {
        counters.withLock { counters in
            var wait: TimeInterval = 0
            if let counter = Self.live(counters.byAccount[account.lowercased()], now: now, window: window), counter.failures >= maxPerAccount {
                wait = max(wait, window - now.timeIntervalSince(counter.windowStart))
            }
            if let counter = Self.live(counters.byAddress[address], now: now, window: window), counter.failures >= maxPerAddress {
                wait = max(wait, window - now.timeIntervalSince(counter.windowStart))
            }
            return wait > 0 ? Int(wait.rounded(.up)) : nil
        }
    }

    public func recordFailure(account: String, address: String, now: Date) {
        counters.withLock { counters in
            Self.bump(&counters.byAccount, account.lowercased(), now: now, window: window)
            Self.bump(&counters.byAddress, address, now: now, window: window)
            if counters.byAccount.count + counters.byAddress.count > 100_000 {
                // Bounded memory under a spray of usernames: forget expired windows.
                counters.byAccount = counters.byAccount.filter { now.timeIntervalSince($0.value.windowStart) < window }
                counters.byAddress = counters.byAddress.filter { now.timeIntervalSince($0.value.windowStart) < window }
            }
        }
    }

    /// A successful sign-in clears the account's count (not the address's).
    public func recordSuccess(account: String) {
        _ = counters.withLock { $0.byAccount.removeValue(forKey: account.lowercased()) }
    }

    static func live(_ counter: Counter?, now: Date, window: TimeInterval) -> Counter? {
        guard let counter, now.timeIntervalSince(counter.windowStart) < window else { return nil }
        return counter
    }

    static func bump(_ table: inout [String: Counter], _ key: String, now: Date, window: TimeInterval) {
        if var counter = live(table[key], now: now, window: window) {
            counter.failures += 1
            table[key] = counter
        } else {
            table[key] = Counter(failures: 1, windowStart: now)
        }
    }
}
