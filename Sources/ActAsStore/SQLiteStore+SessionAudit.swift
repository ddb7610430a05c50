import ActAsCore
import Foundation
import SQLiteNIO

/// The store's per-session copy of the request log (migration 3, keyed by instance since 11).
extension SQLiteStore {
    /// Migration 11: two instances serving one session write the same seqs; keyed by seq alone
    /// the second instance's record was dropped. Existing rows take the instance their line names
    /// (SPEC §10.2 puts `"instance"` in every record), "" when it names none.
    static let sessionAuditByInstanceMigration = [
        """
        CREATE TABLE session_audit_by_instance (
            session_id TEXT NOT NULL,
            instance TEXT NOT NULL,
            seq INTEGER NOT NULL,
            ts REAL NOT NULL,
            line TEXT NOT NULL,
            PRIMARY KEY (session_id, instance, seq))
        """,
        """
        INSERT INTO session_audit_by_instance (session_id, instance, seq, ts, line)
        SELECT session_id, COALESCE(CASE WHEN json_valid(line) THEN json_extract(line, '$.instance') END, ''), seq, ts, line
        FROM session_audit
        """,
        "DROP TABLE session_audit",
        "ALTER TABLE session_audit_by_instance RENAME TO session_audit",
    ]

    public func appendSessionAudit(_ lines: [SessionAuditLine]) async throws {
        guard !lines.isEmpty else { return }
        try await write { tx in
            // One statement per 250 lines, not per line: each statement is a hop to the store's
            // thread and back (per line, a quarter of the proxy's CPU under impersonated load).
            for start in stride(from: 0, to: lines.count, by: 250) {
                let part = lines[start..<min(start + 250, lines.count)]
                // A record the log wrote twice (same instance and seq) is the same line: keep one.
                let values = Array(repeating: "(?, ?, ?, ?, ?)", count: part.count).joined(separator: ", ")
                try await tx.run("INSERT OR IGNORE INTO session_audit (session_id, instance, seq, ts, line) VALUES \(values)", part.flatMap { line in
                    [SQLiteData.text(line.sessionID), .text(line.instance), .integer(Int(line.seq)),
                     .float(line.timestamp.timeIntervalSince1970), .text(line.line)]
                })
            }
        }
    }

    /// In time order (what the pages show); instance, then seq, break ties so the order is the
    /// same on every read and each instance's records stay in their log's order.
    public func sessionAudit(sessionID: String) async throws -> [SessionAuditLine] {
        try await query("SELECT * FROM session_audit WHERE session_id = ? ORDER BY ts, instance, seq", [.text(sessionID)]).map { row in
            SessionAuditLine(
                sessionID: row.column("session_id")?.string ?? "", instance: row.column("instance")?.string ?? "",
                seq: Int64(row.column("seq")?.integer ?? 0),
                timestamp: Self.readDate(row, "ts") ?? Date(timeIntervalSince1970: 0), line: row.column("line")?.string ?? "")
        }
    }
}
