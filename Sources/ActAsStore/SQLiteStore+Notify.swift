import ActAsCore
import Foundation
import SQLiteNIO

/// The notification outbox (SPEC §10.5, migration 7). Claims are leases (`lease_owner`,
/// `lease_until`): SQLite has no row locks, and a write transaction must not stay open while
/// a webhook answers.
extension SQLiteStore {
    static let newEventID = "'evt_' || lower(hex(randomblob(16)))"
    static let nowSeconds = "((julianday('now') - 2440587.5) * 86400.0)"

    static let notifyOutboxMigration: [String] = [
        """
        CREATE TABLE notify_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            created_at REAL NOT NULL,
            order_key TEXT NOT NULL,
            session_id TEXT,
            actor_id TEXT, actor_username TEXT, actor_name TEXT,
            target_id TEXT, target_username TEXT, target_name TEXT,
            reason TEXT, mode TEXT, expires_at REAL, end_reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            lease_owner TEXT, lease_until REAL,
            done_at REAL, outcome TEXT)
        """,
        "CREATE INDEX notify_outbox_pending ON notify_outbox(order_key, seq) WHERE done_at IS NULL",
        """
        CREATE TRIGGER notify_impersonation_started AFTER INSERT ON impersonations WHEN NEW.ended_at IS NULL BEGIN
        \(OutboxSQL.impersonationInsert(type: "impersonation_started", at: "NEW.started_at", newID: newEventID, expires: true, endReason: false));
        END
        """,
        """
        CREATE TRIGGER notify_impersonation_extended AFTER UPDATE OF expires_at ON impersonations
        WHEN OLD.ended_at IS NULL AND NEW.ended_at IS NULL AND NEW.expires_at <> OLD.expires_at BEGIN
        \(OutboxSQL.impersonationInsert(type: "impersonation_extended", at: nowSeconds, newID: newEventID, expires: true, endReason: false));
        END
        """,
        """
        CREATE TRIGGER notify_impersonation_ended AFTER UPDATE OF ended_at ON impersonations
        WHEN OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL BEGIN
        \(OutboxSQL.impersonationInsert(type: "impersonation_ended", at: "NEW.ended_at", newID: newEventID, expires: false, endReason: true));
        END
        """,
        """
        CREATE TRIGGER notify_consent_granted AFTER INSERT ON consents WHEN NEW.revoked_at IS NULL BEGIN
        \(OutboxSQL.consentInsert(type: "consent_granted", at: "NEW.granted_at", newID: newEventID, expires: true));
        END
        """,
        """
        CREATE TRIGGER notify_consent_regranted AFTER UPDATE ON consents
        WHEN NEW.revoked_at IS NULL AND (OLD.revoked_at IS NOT NULL OR OLD.granted_at <> NEW.granted_at) BEGIN
        \(OutboxSQL.consentInsert(type: "consent_granted", at: "NEW.granted_at", newID: newEventID, expires: true));
        END
        """,
        """
        CREATE TRIGGER notify_consent_revoked AFTER UPDATE ON consents
        WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL BEGIN
        \(OutboxSQL.consentInsert(type: "consent_revoked", at: "NEW.revoked_at", newID: newEventID, expires: false));
        END
        """,
    ]

    public func enqueueNotification(_ n: OutboxNotification) async throws {
        try await write { tx in
            try await tx.run("INSERT INTO notify_outbox (\(OutboxSQL.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                .text(n.id), .text(n.type), .float(n.createdAt.timeIntervalSince1970), .text(n.orderKey), Self.text(n.sessionID),
                Self.text(n.actor?.id), Self.text(n.actor?.username), Self.text(n.actor?.name),
                Self.text(n.target?.id), Self.text(n.target?.username), Self.text(n.target?.name),
                Self.text(n.reason), Self.text(n.mode), Self.date(n.expiresAt), Self.text(n.endReason),
                .float(n.createdAt.timeIntervalSince1970),
            ])
        }
    }

    public func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> OutboxNotification? {
        // Idle senders poll: a plain read first, so an empty outbox never takes the write lock.
        let at = SQLiteData.float(now.timeIntervalSince1970)
        let due = try await query("""
            SELECT 1 FROM notify_outbox WHERE done_at IS NULL AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until < ?1) LIMIT 1
            """, [at])
        guard !due.isEmpty else { return nil }
        return try await write { tx in
            let rows = try await tx.run("""
                UPDATE notify_outbox SET lease_owner = ?1, lease_until = ?3, attempts = attempts + 1
                WHERE seq = (\(OutboxSQL.claimableSubquery(now: "?2")))
                RETURNING *
                """, [.text(owner), .float(now.timeIntervalSince1970), .float(now.addingTimeInterval(lease).timeIntervalSince1970)])
            return rows.first.map(Self.outboxNotification)
        }
    }

    public func finishNotification(seq: Int64, owner: String, outcome: OutboxOutcome, now: Date) async throws {
        try await write { tx in
            if case .retry(let at) = outcome {
                try await tx.run("""
                    UPDATE notify_outbox SET next_attempt_at = ?3, lease_owner = NULL, lease_until = NULL
                    WHERE seq = ?1 AND lease_owner = ?2 AND done_at IS NULL
                    """, [.integer(Int(seq)), .text(owner), .float(at.timeIntervalSince1970)])
            } else {
                try await tx.run("""
                    UPDATE notify_outbox SET done_at = ?3, outcome = ?4, lease_owner = NULL, lease_until = NULL
                    WHERE seq = ?1 AND lease_owner = ?2 AND done_at IS NULL
                    """, [.integer(Int(seq)), .text(owner), .float(now.timeIntervalSince1970), .text(outcome.doneLabel ?? "")])
            }
        }
    }

    public func releaseNotifications(owner: String) async throws {
        try await write { tx in
            try await tx.run("UPDATE notify_outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND done_at IS NULL", [.text(owner)])
        }
    }

    public func notificationStats() async throws -> OutboxStats {
        let row = try await query("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM notify_outbox WHERE done_at IS NULL").first
        return OutboxStats(pending: row?.column("n")?.integer ?? 0, oldestPending: row.flatMap { Self.readDate($0, "oldest") })
    }

    public func pruneNotifications(doneBefore before: Date) async throws {
        try await write { tx in
            try await tx.run("DELETE FROM notify_outbox WHERE done_at IS NOT NULL AND done_at < ?", [.float(before.timeIntervalSince1970)])
        }
    }

    static func text(_ value: String?) -> SQLiteData { value.map { .text($0) } ?? .null }

    static func outboxNotification(_ row: SQLiteRow) -> OutboxNotification {
        func person(_ prefix: String) -> OutboxNotification.Person? {
            let id = row.column("\(prefix)_id")?.string
            guard let username = row.column("\(prefix)_username")?.string ?? id else { return nil }
            return .init(id: id, username: username, name: row.column("\(prefix)_name")?.string)
        }
        return OutboxNotification(
            seq: Int64(row.column("seq")?.integer ?? 0), id: row.column("id")?.string ?? "", type: row.column("type")?.string ?? "",
            createdAt: readDate(row, "created_at") ?? Date(timeIntervalSince1970: 0), orderKey: row.column("order_key")?.string ?? "",
            sessionID: row.column("session_id")?.string, actor: person("actor"), target: person("target"),
            reason: row.column("reason")?.string, mode: row.column("mode")?.string, expiresAt: readDate(row, "expires_at"),
            endReason: row.column("end_reason")?.string, attempts: row.column("attempts")?.integer ?? 0)
    }
}
