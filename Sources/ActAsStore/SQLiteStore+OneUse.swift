import Foundation
import SQLiteNIO

/// One-use claims (migration 10, `OneUseClaims.swift`).
extension SQLiteStore {
    static let oneUseMigration = OneUseSchema.statements(dateType: "REAL")

    public func claimOnce(_ kind: OneUseKind, key: String, until: Date, now: Date) async throws -> Bool {
        try await write { tx in
            // Housekeeping in the same transaction: claims are rare (sign-ins, logouts) and the
            // expiry index keeps this cheap.
            try await tx.run("DELETE FROM one_use_claims WHERE expires_at <= ?", [.float(now.timeIntervalSince1970)])
            let inserted = try await tx.run(
                "INSERT INTO one_use_claims (kind, key, expires_at) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO NOTHING RETURNING key",
                [.text(kind.rawValue), .text(key), .float(until.timeIntervalSince1970)])
            return !inserted.isEmpty
        }
    }

    public func oneUseClaimCount() async throws -> Int {
        try await query("SELECT count(*) AS n FROM one_use_claims").first?.column("n")?.integer ?? 0
    }
}
