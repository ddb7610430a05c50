import Foundation

/// When the provider's JWKS is used from memory and when it may be fetched (SPEC §10.3).
/// Pure: the clock is an input. A key set older than `maxAge` is fetched again, so a key the
/// provider removed stops verifying within that time; after a failed fetch none is tried
/// for `failurePause`, so a flood of tokens cannot make the proxy hammer a failing provider.
public struct KeySetCache: Sendable {
    public static let maxAge: TimeInterval = 3600
    public static let failurePause: TimeInterval = 5
    public private(set) var keys: ProviderKeySet?
    public private(set) var fetchedAt: Date?
    public private(set) var failedAt: Date?

    public init() {}

    /// The cached keys while they are fresh.
    public func fresh(now: Date) -> ProviderKeySet? {
        guard let keys, let fetchedAt, now.timeIntervalSince(fetchedAt) < Self.maxAge else { return nil }
        return keys
    }

    /// False while a recent fetch failed.
    public func mayFetch(now: Date) -> Bool {
        guard let failedAt else { return true }
        return now.timeIntervalSince(failedAt) >= Self.failurePause
    }

    public mutating func record(_ fetched: ProviderKeySet?, now: Date) {
        if let fetched {
            keys = fetched
            fetchedAt = now
            failedAt = nil
        } else {
            failedAt = now
        }
    }
}
