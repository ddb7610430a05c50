import ActAsCore
import Foundation
import SQLiteNIO

/// The request log's signed checkpoints (SPEC §10.6, migration 6).
extension SQLiteStore {
    public func saveCheckpoint(_ checkpoint: AuditCheckpoint) async throws {
        try await write { tx in
            try await tx.run(
                "INSERT OR REPLACE INTO checkpoints (instance, seq, covers, head, kid, sig, at) VALUES (?, ?, ?, ?, ?, ?, ?)", [
                    .text(checkpoint.instance), .integer(Int(checkpoint.seq)), .integer(Int(checkpoint.covers)),
                    .text(checkpoint.head), .text(checkpoint.kid), .text(checkpoint.sig),
                    .float(checkpoint.timestamp.timeIntervalSince1970),
                ])
        }
    }

    public func latestCheckpoint(instance: String) async throws -> AuditCheckpoint? {
        let rows = try await query(
            "SELECT * FROM checkpoints WHERE instance = ? ORDER BY seq DESC LIMIT 1", [.text(instance)])
        return rows.first.map { row in
            AuditCheckpoint(
                seq: UInt64(row.column("seq")?.integer ?? 0), covers: UInt64(row.column("covers")?.integer ?? 0),
                head: row.column("head")?.string ?? "", instance: row.column("instance")?.string ?? "",
                kid: row.column("kid")?.string ?? "", sig: row.column("sig")?.string ?? "",
                timestamp: Self.readDate(row, "at") ?? Date(timeIntervalSince1970: 0))
        }
    }
}
