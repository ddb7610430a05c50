import Foundation

/// A signed-in browser session. Only the SHA-256 of the cookie value is ever stored.
public struct SignInSession: Sendable, Equatable {
    /// Lower-case hex SHA-256 of the cookie value.
    public var idHash: String
    public var userID: String
    /// Per-session CSRF token (not a credential on its own: useless without the cookie).
    public var csrfToken: String
    public var createdAt: Date
    public var expiresAt: Date
    public var clientIP: String

    public init(idHash: String, userID: String, csrfToken: String, createdAt: Date, expiresAt: Date, clientIP: String) {
        self.idHash = idHash
        self.userID = userID
        self.csrfToken = csrfToken
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.clientIP = clientIP
    }
}

/// An API token for scripts (`actas_…`). Only its SHA-256 is stored.
public struct APIToken: Sendable, Equatable {
    /// Public handle (`tok_…`), shown by `tokens list` and taken by `tokens revoke`.
    public var id: String
    public var userID: String
    public var name: String
    /// Lower-case hex SHA-256 of the token.
    public var tokenHash: String
    public var createdAt: Date
    public var revokedAt: Date?

    public init(id: String, userID: String, name: String, tokenHash: String, createdAt: Date, revokedAt: Date? = nil) {
        self.id = id
        self.userID = userID
        self.name = name
        self.tokenHash = tokenHash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// One key of the assertion key ring. The newest non-retired key signs; retired keys stay
/// published in the JWKS until `publishedUntil`.
public struct SigningKeyRecord: Sendable, Equatable {
    public var kid: String
    /// Raw P-256 private key (32 bytes).
    public var privateKey: Data
    public var createdAt: Date
    /// Set when a newer key replaced this one; the key is then only published, not used.
    public var retiredAt: Date?

    public init(kid: String, privateKey: Data, createdAt: Date, retiredAt: Date? = nil) {
        self.kid = kid
        self.privateKey = privateKey
        self.createdAt = createdAt
        self.retiredAt = retiredAt
    }
}

/// A user's consent to be impersonated, for a bounded time (SPEC §4, §6).
public struct Consent: Sendable, Equatable {
    public var userID: String
    public var grantedAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?

    public init(userID: String, grantedAt: Date, expiresAt: Date, revokedAt: Date? = nil) {
        self.userID = userID
        self.grantedAt = grantedAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// The end as shown (`expires_at` is RFC 3339 in whole seconds) is the end enforced.
    public var end: Date { expiresAt.wholeSecondsDown }

    public func isActive(at now: Date) -> Bool { revokedAt == nil && now < end }
}

extension Date {
    /// This instant without its fraction of a second. Session and consent ends are shown and
    /// sent in whole seconds (RFC 3339 without fraction), so they are kept and enforced in
    /// whole seconds too: what is shown, sent and enforced is one instant.
    public var wholeSecondsDown: Date {
        Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.down))
    }
}

public enum ImpersonationMode: String, Sendable, CaseIterable, Codable {
    case readWrite = "read-write"
    case readOnly = "read-only"
}

/// Why an impersonation session ended (SPEC §7), as recorded in `end_reason`.
public enum EndReason: String, Sendable, CaseIterable, Codable {
    case exit
    case expired
    case consentExpired = "consent_expired"
    case consentRevoked = "consent_revoked"
    case targetSuspended = "target_suspended"
    case targetDeleted = "target_deleted"
    case actorSignedOut = "actor_signed_out"
    case actorLostPermission = "actor_lost_permission"
    case endedByOperator = "ended_by_operator"
    /// SPEC §10.5: the person acted as pressed "End it now".
    case endedByTarget = "ended_by_target"

    /// Exit and sign-out take the administrator straight back; every other end is announced.
    public var isAnnounced: Bool { self != .exit && self != .actorSignedOut }

    public var sentence: String {
        switch self {
        case .exit: return "You ended the session."
        case .expired: return "The session reached the end of its time."
        case .consentExpired: return "The user's consent expired."
        case .consentRevoked: return "The user revoked their consent."
        case .targetSuspended: return "The user was suspended."
        case .targetDeleted: return "The user was deleted."
        case .actorSignedOut: return "You signed out."
        case .actorLostPermission: return "You no longer have permission to impersonate."
        case .endedByOperator: return "An operator ended the session."
        case .endedByTarget: return "The user you were acting as ended the session."
        }
    }
}

/// An administrator acting as another user.
public struct ImpersonationSession: Sendable, Equatable {
    /// `imp_…`
    public var id: String
    public var actorID: String
    public var targetID: String
    public var reason: String
    public var mode: ImpersonationMode
    public var startedAt: Date
    public var expiresAt: Date
    public var endedAt: Date?
    public var endReason: EndReason?
    /// Ended, and the administrator has not been told why yet (SPEC §7).
    public var noticePending: Bool
    /// The id hash of the sign-in session that started it (SPEC §7: it belongs to that
    /// sign-in; the same administrator's other sign-ins browse as themselves). Nil on rows
    /// from before schema version 5: those belong to every sign-in of the administrator.
    public var signInSession: String?

    public init(
        id: String, actorID: String, targetID: String, reason: String, mode: ImpersonationMode,
        startedAt: Date, expiresAt: Date, endedAt: Date? = nil, endReason: EndReason? = nil, noticePending: Bool = false,
        signInSession: String? = nil
    ) {
        self.id = id
        self.actorID = actorID
        self.targetID = targetID
        self.reason = reason
        self.mode = mode
        self.startedAt = startedAt
        self.expiresAt = expiresAt
        self.endedAt = endedAt
        self.endReason = endReason
        self.noticePending = noticePending
        self.signInSession = signInSession
    }

    public var isOpen: Bool { endedAt == nil }

    /// Whether the sign-in session with this id hash acts through it (nil: an API token,
    /// which never does).
    public func belongs(toSignIn idHash: String?) -> Bool {
        guard let idHash else { return false }
        return signInSession == nil || signInSession == idHash
    }
}
