import ActAsCore
import Foundation

/// One change to shared state, as recorded by the store's change feed. Consumers re-read the
/// entity (`kind`, `key`) rather than trusting a payload, so replaying a change is harmless.
public struct Change: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case user, session, token, key, consent, impersonation
    }

    public var id: Int64
    public var kind: Kind
    /// The entity's key: user id, session id hash, token hash, kid, user id, impersonation id.
    public var key: String

    public init(id: Int64, kind: Kind, key: String) {
        self.id = id
        self.kind = kind
        self.key = key
    }
}

public enum StoreError: Error, CustomStringConvertible, Equatable {
    case conflict(String)
    case notFound(String)
    case invalid(String)
    case unavailable(String)

    public var description: String {
        switch self {
        case .conflict(let message), .notFound(let message), .invalid(let message), .unavailable(let message):
            return message
        }
    }
}

/// Everything the live state needs at start-up, read in one consistent transaction.
public struct StoreSnapshot: Sendable {
    public var users: [User]
    public var sessions: [SignInSession]
    public var tokens: [APIToken]
    public var keys: [SigningKeyRecord]
    public var consents: [Consent]
    /// Open sessions, and ended ones whose end notice is pending.
    public var impersonations: [ImpersonationSession]
    /// The change feed position the snapshot reflects.
    public var changeID: Int64

    /// For stores in other modules (PostgreSQL).
    public init(users: [User], sessions: [SignInSession], tokens: [APIToken], keys: [SigningKeyRecord], consents: [Consent],
                impersonations: [ImpersonationSession], changeID: Int64) {
        self.users = users
        self.sessions = sessions
        self.tokens = tokens
        self.keys = keys
        self.consents = consents
        self.impersonations = impersonations
        self.changeID = changeID
    }
}

/// Persistent state shared by every ActAs process using the same `store.url`. Each write is
/// one transaction that also appends to the change feed, so other processes (and `actas`
/// commands) learn about it. Implementations: SQLite (default), PostgreSQL (later); callers
/// only see this protocol.
public protocol Store: Sendable {
    /// Applies pending schema migrations; safe to run from several processes at once.
    func migrate() async throws
    func close() async

    func snapshot(now: Date) async throws -> StoreSnapshot
    /// Changes after `id`, oldest first. `nil` when `id` is older than the feed keeps, so the
    /// reader must reload a full snapshot.
    func changes(after id: Int64, limit: Int) async throws -> [Change]?
    /// Forgets change rows older than `before` (never the newest one).
    func pruneChanges(before: Date) async throws

    // Users
    func users() async throws -> [User]
    func user(id: String) async throws -> User?
    func user(username: String) async throws -> User?
    /// Inserts or updates each user by `username`, in one transaction. Users whose status
    /// becomes suspended or deleted lose their sign-in sessions and tokens stop working.
    func saveUsers(_ users: [User]) async throws
    /// Records a successful sign-in: `last_login`, invited → active, and the new session.
    func recordSignIn(userID: String, at: Date, session: SignInSession) async throws -> User

    // Sign-in sessions
    func session(idHash: String) async throws -> SignInSession?
    func deleteSession(idHash: String) async throws
    func deleteExpiredSessions(before: Date) async throws -> Int

    // API tokens
    func insertToken(_ token: APIToken) async throws
    func tokens(userID: String?) async throws -> [APIToken]
    func token(hash: String) async throws -> APIToken?
    func revokeToken(id: String, at: Date) async throws -> APIToken

    // Signing keys
    func signingKeys() async throws -> [SigningKeyRecord]
    /// Adds `key` as the signing key and retires the previous one (only if `expectedCurrent`
    /// is still current, so two processes creating the first key cannot both win).
    func addSigningKey(_ key: SigningKeyRecord, retiring expectedCurrent: String?, at: Date) async throws -> Bool
    /// Deletes keys retired before `retiredBefore`, keeping their public halves in the archive.
    func deleteSigningKeys(retiredBefore: Date) async throws
    /// The public halves of deleted keys, for checking old checkpoints (SPEC §10.6).
    func retiredPublicKeys() async throws -> [RetiredPublicKey]

    // Consent
    func consent(userID: String) async throws -> Consent?
    func saveConsent(_ consent: Consent) async throws

    // Impersonation sessions
    func impersonation(id: String) async throws -> ImpersonationSession?
    func impersonations(activeOnly: Bool) async throws -> [ImpersonationSession]
    /// Inserts `session` unless the actor already has an open one (returns false then).
    func startImpersonation(_ session: ImpersonationSession) async throws -> Bool
    func updateImpersonation(_ session: ImpersonationSession) async throws
    /// Newest first, filtered by actor and/or target.
    func impersonations(actorID: String?, targetID: String?, limit: Int) async throws -> [ImpersonationSession]
    /// Ends an open session (nil if it was already ended); `notice` keeps it pending until the
    /// administrator has been told why.
    func endImpersonation(id: String, at: Date, reason: EndReason, notice: Bool) async throws -> ImpersonationSession?
    func clearEndNotice(id: String) async throws

    // Running instances (SPEC §10.1): commands reach them through their admin listeners.
    /// The change feed's newest position (0 when empty): what a command waits for after its
    /// write.
    func latestChangeID() async throws -> Int64
    /// Inserts or replaces the instance's row (start, and a heartbeat that found it missing).
    func registerInstance(_ instance: InstanceRecord) async throws
    /// Refreshes `last_seen`; false when the row is gone (then register again).
    func touchInstance(id: String, startedAt: Date, at: Date) async throws -> Bool
    /// Removes the row this process registered (not a later one with the same id).
    func removeInstance(id: String, startedAt: Date) async throws
    /// Forgets rows nobody refreshed since `before` (instances that were killed).
    func forgetInstances(lastSeenBefore before: Date) async throws
    func instances() async throws -> [InstanceRecord]

    // The request log's records of impersonation sessions, for the people concerned
    func appendSessionAudit(_ lines: [SessionAuditLine]) async throws
    func sessionAudit(sessionID: String) async throws -> [SessionAuditLine]

    // The request log's signed checkpoints (SPEC §10.6), so a cut or rewritten log shows
    /// Keeps a checkpoint the log wrote (again for the same instance and seq: replaced).
    func saveCheckpoint(_ checkpoint: AuditCheckpoint) async throws
    /// The instance's checkpoint with the highest seq, nil when it has none.
    func latestCheckpoint(instance: String) async throws -> AuditCheckpoint?

    // OIDC sign-in (SPEC §10.3): users by the provider's (issuer, sub), else verified email.
    func oidcUserID(issuer: String, subject: String) async throws -> String?
    /// Users whose email equals `email` (case-insensitively); none for "".
    func users(email: String) async throws -> [User]
    /// As `recordSignIn`, in one transaction: creates the user or updates its fields from the
    /// claims (a rename included; `conflict` on a taken username), links `(issuer, sub)` to it
    /// (`conflict` when linked to another, or when the user is linked to another subject of the
    /// same issuer) and keeps the record for sign-out and back-channel logout.
    func recordOIDCSignIn(_ record: OIDCSignInRecord, user: User, session: SignInSession, at: Date) async throws -> User
    func oidcSignIn(sessionHash: String) async throws -> OIDCSignInRecord?
    /// The sign-ins of one provider session (`providerSessionID`) and/or subject; nil: any.
    func oidcSignIns(issuer: String, providerSessionID: String?, subject: String?) async throws -> [OIDCSignInRecord]
    /// For `actas store migrate`.
    func oidcIdentities() async throws -> [OIDCIdentityLink]
    func saveOIDCIdentities(_ links: [OIDCIdentityLink]) async throws
    /// True the first time `key` of `kind` is claimed, on any instance, until `until`; false for
    /// a replay. Claims past their `until` are deleted (`now`) and may be made again.
    func claimOnce(_ kind: OneUseKind, key: String, until: Date, now: Date) async throws -> Bool
    func oneUseClaimCount() async throws -> Int

    // The notification outbox (SPEC §10.5): rows for state changes are written by the store
    // in the change's own transaction; `enqueueNotification` is for events that change nothing
    // (a refused start).
    func enqueueNotification(_ notification: OutboxNotification) async throws
    /// Takes the oldest notification that may go now (in order per `orderKey`) for `lease`
    /// seconds; nil when none is due.
    func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> OutboxNotification?
    func finishNotification(seq: Int64, owner: String, outcome: OutboxOutcome, now: Date) async throws
    /// Gives back this owner's claims (a restart after `kill -9` need not wait out the lease).
    func releaseNotifications(owner: String) async throws
    func notificationStats() async throws -> OutboxStats
    func pruneNotifications(doneBefore: Date) async throws
}

/// A request-log line that belongs to an impersonation session, kept in the store exactly as
/// written to the log (so the copy verifies against the file's hash).
/// Keyed by (session, instance, seq): each instance numbers its own log (SPEC §10.2), so two
/// instances serving one session write the same seqs.
public struct SessionAuditLine: Sendable, Equatable {
    public var sessionID: String
    /// `listen.instance_id` of the instance whose log wrote the line ("" for rows copied before
    /// migration 11 whose line names none).
    public var instance: String
    public var seq: Int64
    public var timestamp: Date
    public var line: String

    public init(sessionID: String, instance: String, seq: Int64, timestamp: Date, line: String) {
        self.sessionID = sessionID
        self.instance = instance
        self.seq = seq
        self.timestamp = timestamp
        self.line = line
    }
}
