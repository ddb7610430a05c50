import ActAsStore
import Foundation
import PostgresNIO

/// One-use claims (migration 10), as `SQLiteStore+OneUse`.
extension PostgresStore {
    static let oneUseMigration = OneUseSchema.statements(dateType: "DOUBLE PRECISION")

    public func claimOnce(_ kind: OneUseKind, key: String, until: Date, now: Date) async throws -> Bool {
        let (nowTime, untilTime) = (now.timeIntervalSince1970, until.timeIntervalSince1970)
        // No change feed entry: nothing other instances hold in memory changes. A concurrent
        // claim of the same key waits for this one's commit, then inserts nothing.
        return try await write(feed: false) { tx in
            try await tx.run("DELETE FROM one_use_claims WHERE expires_at <= \(nowTime)")
            let inserted = try await tx.run("""
                INSERT INTO one_use_claims (kind, key, expires_at) VALUES (\(kind.rawValue), \(key), \(untilTime))
                ON CONFLICT (kind, key) DO NOTHING RETURNING key
                """)
            return !inserted.isEmpty
        }
    }

    public func oneUseClaimCount() async throws -> Int {
        try await query("SELECT count(*)::BIGINT AS n FROM one_use_claims").first?.int("n").map(Int.init) ?? 0
    }
}
