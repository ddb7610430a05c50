import Foundation

/// One notification waiting in the store's outbox (SPEC §10.5). State changes write theirs
/// in the same transaction (database triggers on `impersonations` and `consents`), so a
/// crash can lose neither without the other; the sender claims rows one at a time.
public struct OutboxNotification: Sendable, Equatable {
    public struct Person: Sendable, Equatable {
        public var id: String?
        public var username: String
        public var name: String?

        public init(id: String?, username: String, name: String?) {
            self.id = id
            self.username = username
            self.name = name
        }
    }

    /// The store's order (0 before it is written).
    public var seq: Int64
    /// `evt_…`: the idempotency key, the same on every attempt.
    public var id: String
    public var type: String
    public var createdAt: Date
    /// Rows with the same key are delivered in order (a session's events; a user's consent).
    public var orderKey: String
    public var sessionID: String?
    public var actor: Person?
    public var target: Person?
    public var reason: String?
    public var mode: String?
    public var expiresAt: Date?
    public var endReason: String?
    /// Attempts made, this one included once claimed.
    public var attempts: Int

    public init(seq: Int64 = 0, id: String, type: String, createdAt: Date, orderKey: String, sessionID: String? = nil,
                actor: Person? = nil, target: Person? = nil, reason: String? = nil, mode: String? = nil,
                expiresAt: Date? = nil, endReason: String? = nil, attempts: Int = 0) {
        self.seq = seq
        self.id = id
        self.type = type
        self.createdAt = createdAt
        self.orderKey = orderKey
        self.sessionID = sessionID
        self.actor = actor
        self.target = target
        self.reason = reason
        self.mode = mode
        self.expiresAt = expiresAt
        self.endReason = endReason
        self.attempts = attempts
    }
}

/// What became of a claimed notification.
public enum OutboxOutcome: Sendable, Equatable {
    case delivered
    /// Try again at that time (the claim is released).
    case retry(at: Date)
    /// `retry_for` passed without a 2xx answer.
    case gaveUp
    /// Not sent: no webhook, or its type is not in `notify.events`.
    case skipped

    var doneLabel: String? {
        switch self {
        case .delivered: return "delivered"
        case .gaveUp: return "gave_up"
        case .skipped: return "skipped"
        case .retry: return nil
        }
    }
}

public struct OutboxStats: Sendable, Equatable {
    public var pending: Int
    public var oldestPending: Date?

    public init(pending: Int, oldestPending: Date?) {
        self.pending = pending
        self.oldestPending = oldestPending
    }
}

/// The outbox's SQL, shared by both stores where the dialects agree.
public enum OutboxSQL {
    public static let columns = """
        id, type, created_at, order_key, session_id, actor_id, actor_username, actor_name, target_id, target_username, \
        target_name, reason, mode, expires_at, end_reason, next_attempt_at
        """

    /// The row a trigger on `impersonations` writes: `at` is the event time expression.
    public static func impersonationInsert(type: String, at: String, newID: String, expires: Bool, endReason: Bool) -> String {
        """
        INSERT INTO notify_outbox (\(columns)) VALUES (\(newID), '\(type)', \(at), NEW.id, NEW.id,
            NEW.actor_id, (SELECT username FROM users WHERE id = NEW.actor_id), (SELECT name FROM users WHERE id = NEW.actor_id),
            NEW.target_id, (SELECT username FROM users WHERE id = NEW.target_id), (SELECT name FROM users WHERE id = NEW.target_id),
            NEW.reason, NEW.mode, \(expires ? "NEW.expires_at" : "NULL"), \(endReason ? "NEW.end_reason" : "NULL"), \(at))
        """
    }

    /// The row a trigger on `consents` writes: the user whose consent it is is the target.
    public static func consentInsert(type: String, at: String, newID: String, expires: Bool) -> String {
        """
        INSERT INTO notify_outbox (\(columns)) VALUES (\(newID), '\(type)', \(at), 'consent:' || NEW.user_id, NULL,
            NULL, NULL, NULL,
            NEW.user_id, (SELECT username FROM users WHERE id = NEW.user_id), (SELECT name FROM users WHERE id = NEW.user_id),
            NULL, NULL, \(expires ? "NEW.expires_at" : "NULL"), NULL, \(at))
        """
    }

    /// The oldest row that may go now: not done, due, not claimed by a live lease, and no
    /// earlier row of its order key still undelivered. `$now` is the bound parameter.
    public static func claimableSubquery(now: String, lockClause: String = "") -> String {
        """
        SELECT o.seq FROM notify_outbox o
        WHERE o.done_at IS NULL AND o.next_attempt_at <= \(now) AND (o.lease_until IS NULL OR o.lease_until < \(now))
          AND NOT EXISTS (SELECT 1 FROM notify_outbox e WHERE e.order_key = o.order_key AND e.seq < o.seq AND e.done_at IS NULL)
        ORDER BY o.seq LIMIT 1 \(lockClause)
        """
    }
}
