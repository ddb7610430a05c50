import ActAsCore
import ActAsStore
import Foundation
import PostgresNIO

/// The notification outbox (SPEC §10.5, migration 7), as in `SQLiteStore+Notify.swift`. A
/// claim takes its row with `FOR UPDATE SKIP LOCKED`, so instances claiming at once take
/// different rows, and then holds a lease while the webhook answers (no transaction stays open).
extension PostgresStore {
    static let newEventID = "'evt_' || replace(gen_random_uuid()::text, '-', '')"
    static let nowSeconds = "extract(epoch from clock_timestamp())::DOUBLE PRECISION"

    static let notifyOutboxMigration: [String] = [
        """
        CREATE TABLE notify_outbox (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            order_key TEXT NOT NULL,
            session_id TEXT,
            actor_id TEXT, actor_username TEXT, actor_name TEXT,
            target_id TEXT, target_username TEXT, target_name TEXT,
            reason TEXT, mode TEXT, expires_at DOUBLE PRECISION, end_reason TEXT,
            attempts BIGINT NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL,
            lease_owner TEXT, lease_until DOUBLE PRECISION,
            done_at DOUBLE PRECISION, outcome TEXT)
        """,
        "CREATE INDEX notify_outbox_pending ON notify_outbox(order_key, seq) WHERE done_at IS NULL",
        """
        CREATE FUNCTION notify_impersonation_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            IF NEW.ended_at IS NULL THEN
              \(OutboxSQL.impersonationInsert(type: "impersonation_started", at: "NEW.started_at", newID: newEventID, expires: true, endReason: false));
            END IF;
          ELSIF OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL THEN
            \(OutboxSQL.impersonationInsert(type: "impersonation_ended", at: "NEW.ended_at", newID: newEventID, expires: false, endReason: true));
          ELSIF OLD.ended_at IS NULL AND NEW.ended_at IS NULL AND NEW.expires_at <> OLD.expires_at THEN
            \(OutboxSQL.impersonationInsert(type: "impersonation_extended", at: nowSeconds, newID: newEventID, expires: true, endReason: false));
          END IF;
          RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER notify_impersonations AFTER INSERT OR UPDATE ON impersonations FOR EACH ROW EXECUTE FUNCTION notify_impersonation_event()",
        """
        CREATE FUNCTION notify_consent_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            IF NEW.revoked_at IS NULL THEN
              \(OutboxSQL.consentInsert(type: "consent_granted", at: "NEW.granted_at", newID: newEventID, expires: true));
            END IF;
          ELSIF NEW.revoked_at IS NULL AND (OLD.revoked_at IS NOT NULL OR OLD.granted_at <> NEW.granted_at) THEN
            \(OutboxSQL.consentInsert(type: "consent_granted", at: "NEW.granted_at", newID: newEventID, expires: true));
          ELSIF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
            \(OutboxSQL.consentInsert(type: "consent_revoked", at: "NEW.revoked_at", newID: newEventID, expires: false));
          END IF;
          RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER notify_consents AFTER INSERT OR UPDATE ON consents FOR EACH ROW EXECUTE FUNCTION notify_consent_event()",
    ]

    public func enqueueNotification(_ n: OutboxNotification) async throws {
        let created = n.createdAt.timeIntervalSince1970
        try await write(feed: false) { tx in
            try await tx.run("""
                INSERT INTO notify_outbox (id, type, created_at, order_key, session_id, actor_id, actor_username, actor_name,
                    target_id, target_username, target_name, reason, mode, expires_at, end_reason, next_attempt_at)
                VALUES (\(n.id), \(n.type), \(created), \(n.orderKey), \(n.sessionID), \(n.actor?.id), \(n.actor?.username),
                    \(n.actor?.name), \(n.target?.id), \(n.target?.username), \(n.target?.name), \(n.reason), \(n.mode),
                    \(n.expiresAt?.timeIntervalSince1970), \(n.endReason), \(created))
                """)
        }
    }

    public func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> OutboxNotification? {
        let at = now.timeIntervalSince1970
        let until = now.addingTimeInterval(lease).timeIntervalSince1970
        let rows = try await write(feed: false) { tx in
            try await tx.run("""
                UPDATE notify_outbox SET lease_owner = \(owner), lease_until = \(until), attempts = attempts + 1
                WHERE seq = (
                    SELECT o.seq FROM notify_outbox o
                    WHERE o.done_at IS NULL AND o.next_attempt_at <= \(at) AND (o.lease_until IS NULL OR o.lease_until < \(at))
                      AND NOT EXISTS (SELECT 1 FROM notify_outbox e WHERE e.order_key = o.order_key AND e.seq < o.seq AND e.done_at IS NULL)
                    ORDER BY o.seq LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING *
                """)
        }
        return rows.first.map(Self.outboxNotification)
    }

    public func finishNotification(seq: Int64, owner: String, outcome: OutboxOutcome, now: Date) async throws {
        let at = now.timeIntervalSince1970
        try await write(feed: false) { tx in
            switch outcome {
            case .retry(let next):
                try await tx.run("""
                    UPDATE notify_outbox SET next_attempt_at = \(next.timeIntervalSince1970), lease_owner = NULL, lease_until = NULL
                    WHERE seq = \(seq) AND lease_owner = \(owner) AND done_at IS NULL
                    """)
            case .delivered, .gaveUp, .skipped:
                let label = outcome == .delivered ? "delivered" : outcome == .gaveUp ? "gave_up" : "skipped"
                try await tx.run("""
                    UPDATE notify_outbox SET done_at = \(at), outcome = \(label), lease_owner = NULL, lease_until = NULL
                    WHERE seq = \(seq) AND lease_owner = \(owner) AND done_at IS NULL
                    """)
            }
        }
    }

    public func releaseNotifications(owner: String) async throws {
        try await write(feed: false) { tx in
            try await tx.run("UPDATE notify_outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = \(owner) AND done_at IS NULL")
        }
    }

    public func notificationStats() async throws -> OutboxStats {
        let row = try await query("SELECT COUNT(*)::BIGINT AS n, MIN(created_at) AS oldest FROM notify_outbox WHERE done_at IS NULL").first
        return OutboxStats(pending: Int(row?.int("n") ?? 0), oldestPending: row?.date("oldest"))
    }

    public func pruneNotifications(doneBefore before: Date) async throws {
        let at = before.timeIntervalSince1970
        try await write(feed: false) { tx in
            try await tx.run("DELETE FROM notify_outbox WHERE done_at IS NOT NULL AND done_at < \(at)")
        }
    }

    static func outboxNotification(_ row: Row) -> OutboxNotification {
        func person(_ prefix: String) -> OutboxNotification.Person? {
            let id = row.string("\(prefix)_id")
            guard let username = row.string("\(prefix)_username") ?? id else { return nil }
            return .init(id: id, username: username, name: row.string("\(prefix)_name"))
        }
        return OutboxNotification(
            seq: row.int("seq") ?? 0, id: row.string("id") ?? "", type: row.string("type") ?? "",
            createdAt: row.date("created_at") ?? epoch, orderKey: row.string("order_key") ?? "",
            sessionID: row.string("session_id"), actor: person("actor"), target: person("target"),
            reason: row.string("reason"), mode: row.string("mode"), expiresAt: row.date("expires_at"),
            endReason: row.string("end_reason"), attempts: Int(row.int("attempts") ?? 0))
    }
}
