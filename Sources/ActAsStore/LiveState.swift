import ActAsCore
import ActAsCrypto
import Foundation
import Synchronization

/// The in-memory copy of everything the request path needs (ARCHITECTURE decision 5): users,
/// sign-in sessions, API tokens, the key ring, consents and open impersonation sessions. Fed
/// by the store's change feed; every change made by this process is applied here before the
/// changing request returns. The request path reads it under a short lock, and memoises per
/// connection against `generation`, which every change bumps.
public final class LiveState: Sendable {
    public struct Tables: Sendable {
        public var users: [String: User] = [:]
        public var userIDsByUsername: [String: String] = [:]
        /// By SHA-256 (hex) of the cookie value.
        public var sessions: [String: SignInSession] = [:]
        /// Live (unrevoked) tokens by SHA-256 (hex) of the token.
        public var tokens: [String: APIToken] = [:]
        public var keyRing: KeyRing?
        public var consents: [String: Consent] = [:]
        /// Open impersonation sessions by id, and by actor id.
        public var impersonations: [String: ImpersonationSession] = [:]
        public var openImpersonationByActor: [String: String] = [:]
        /// Open sessions by target id (SPEC §10.5: the target's notice is looked up on every
        /// request of every signed-in user, so it is an index, not a scan).
        public var openImpersonationsByTarget: [String: Set<String>] = [:]
        /// Ended sessions whose administrator has not been told why yet, by actor id.
        public var pendingNotices: [String: ImpersonationSession] = [:]
        /// When each administrator last went straight on (a new session, exit, sign-out): a
        /// notice about a session that ended before then is no longer news, also when its row
        /// arrives late from the store.
        var noticesDroppedAt: [String: Date] = [:]

        /// Drops the actor's pending notice as of `at`; returns it.
        mutating func dropNotice(actorID: String, at: Date) -> ImpersonationSession? {
            noticesDroppedAt[actorID] = max(noticesDroppedAt[actorID] ?? .distantPast, at)
            return pendingNotices.removeValue(forKey: actorID)
        }

        /// Whether an ended session's notice is still news: the latest end, after the last drop.
        func noticeIsNews(_ session: ImpersonationSession) -> Bool {
            let ended = session.endedAt ?? .distantPast
            if let dropped = noticesDroppedAt[session.actorID], ended <= dropped { return false }
            if openImpersonationByActor[session.actorID] != nil { return false }
            if let current = pendingNotices[session.actorID], current.id != session.id, (current.endedAt ?? .distantPast) > ended {
                return false
            }
            return true
        }

        mutating func indexTarget(_ session: ImpersonationSession, open: Bool) {
            if open {
                openImpersonationsByTarget[session.targetID, default: []].insert(session.id)
            } else if var ids = openImpersonationsByTarget[session.targetID] {
                ids.remove(session.id)
                openImpersonationsByTarget[session.targetID] = ids.isEmpty ? nil : ids
            }
        }

        /// The open sessions acting as `targetID`, oldest first.
        public func openImpersonations(targetID: String) -> [ImpersonationSession] {
            guard let ids = openImpersonationsByTarget[targetID] else { return [] }
            return ids.compactMap { impersonations[$0] }.sorted { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }
        }

        /// The administrator's open session, whichever sign-in started it (one per
        /// administrator: `chaining`).
        public func openImpersonation(actorID: String) -> ImpersonationSession? {
            openImpersonationByActor[actorID].flatMap { impersonations[$0] }
        }

        /// The open session the sign-in `signIn` (a session id hash; nil for API tokens) acts
        /// through: SPEC §7, an impersonation belongs to the sign-in that started it.
        public func openImpersonation(actorID: String, signIn: String?) -> ImpersonationSession? {
            openImpersonation(actorID: actorID).flatMap { $0.belongs(toSignIn: signIn) ? $0 : nil }
        }

        /// The pending end notice meant for the sign-in `signIn` (the one that was acting).
        public func pendingNotice(actorID: String, signIn: String?) -> ImpersonationSession? {
            pendingNotices[actorID].flatMap { $0.belongs(toSignIn: signIn) ? $0 : nil }
        }

        public func user(username: String) -> User? {
            userIDsByUsername[username].flatMap { users[$0] }
        }
    }

    /// What a credential resolves to right now.
    public struct Principal: Sendable {
        /// Always the person who signed in (the administrator while impersonating).
        public var user: User
        public var session: SignInSession?
        public var token: APIToken?
        /// Browser sessions only (tokens cannot impersonate): the actor's open impersonation,
        /// with the target's current record and consent, for the per-request end check.
        public var impersonation: ImpersonationSession?
        public var target: User?
        public var targetConsent: Consent?
        /// An ended impersonation the administrator has not been told about yet.
        public var pendingNotice: ImpersonationSession?
        /// Browser sessions only: the open impersonations of this user by others, with each
        /// actor's current record, and the user's own consent (SPEC §10.5's notice).
        public var actingAsMe: [ActingAsMe] = []
        public var ownConsent: Consent?

        public init(user: User, session: SignInSession? = nil, token: APIToken? = nil) {
            self.user = user
            self.session = session
            self.token = token
        }
    }

    /// An open impersonation of the principal, and who is acting.
    public struct ActingAsMe: Sendable, Equatable {
        public var session: ImpersonationSession
        public var actor: User?

        public init(session: ImpersonationSession, actor: User?) {
            self.session = session
            self.actor = actor
        }
    }

    private let tables = Mutex(Tables())
    /// Ends enforced here whose store write failed; retried by the sweep.
    private let unpersisted = Mutex<[ImpersonationSession]>([])
    /// Notices dropped here (ids) that the store still has pending; cleared there by the sweep.
    private let droppedNotices = Mutex<Set<String>>([])
    private let generationCounter = Atomic<UInt64>(1)
    /// How long a retired signing key stays in the JWKS.
    public let keyGracePeriod: TimeInterval

    public init(keyGracePeriod: TimeInterval = 24 * 3600) {
        self.keyGracePeriod = keyGracePeriod
    }

    /// Changes whenever anything changes; a memo taken at generation G is valid while it is G.
    @inline(__always)
    public var generation: UInt64 { generationCounter.load(ordering: .acquiring) }

    public func read<T>(_ body: (borrowing Tables) throws -> T) rethrows -> T {
        try tables.withLock { try body($0) }
    }

    private func mutate<T>(_ body: (inout Tables) throws -> T) rethrows -> T {
        try tables.withLock { tables in
            let result = try body(&tables)
            generationCounter.add(1, ordering: .releasing)
            return result
        }
    }

    // MARK: resolution (request path)

    /// A signed-in session's user, if the session is alive and its user may be signed in.
    public func principal(sessionHash: String, now: Date) -> Principal? {
        tables.withLock { tables in
            guard let session = tables.sessions[sessionHash], session.expiresAt > now,
                  let user = tables.users[session.userID], user.status.maySignIn else { return nil }
            var principal = Principal(user: user, session: session)
            if let impersonation = tables.openImpersonation(actorID: user.id, signIn: sessionHash) {
                principal.impersonation = impersonation
                principal.target = tables.users[impersonation.targetID]
                principal.targetConsent = tables.consents[impersonation.targetID]
            }
            principal.pendingNotice = tables.pendingNotice(actorID: user.id, signIn: sessionHash)
            if tables.openImpersonationsByTarget[user.id] != nil {
                principal.actingAsMe = tables.openImpersonations(targetID: user.id).map {
                    ActingAsMe(session: $0, actor: tables.users[$0.actorID])
                }
                principal.ownConsent = tables.consents[user.id]
            }
            return principal
        }
    }

    public func principal(tokenHash: String) -> Principal? {
        tables.withLock { tables in
            guard let token = tables.tokens[tokenHash], token.revokedAt == nil,
                  let user = tables.users[token.userID], user.status.maySignIn else { return nil }
            return Principal(user: user, session: nil, token: token)
        }
    }

    public var keyRing: KeyRing? { tables.withLock { $0.keyRing } }

    // MARK: updates

    public func load(_ snapshot: StoreSnapshot, now: Date) {
        var fresh = Tables()
        for user in snapshot.users {
            fresh.users[user.id] = user
            fresh.userIDsByUsername[user.username] = user.id
        }
        for session in snapshot.sessions { fresh.sessions[session.idHash] = session }
        for token in snapshot.tokens where token.revokedAt == nil { fresh.tokens[token.tokenHash] = token }
        fresh.keyRing = Self.ring(snapshot.keys, now: now, grace: keyGracePeriod)
        for consent in snapshot.consents { fresh.consents[consent.userID] = consent }
        for session in snapshot.impersonations where session.isOpen {
            fresh.impersonations[session.id] = session
            fresh.openImpersonationByActor[session.actorID] = session.id
            fresh.indexTarget(session, open: true)
        }
        let stale: Set<String> = mutate { tables in
            // One notice per administrator: the latest end, none beside an open session and
            // none from before they last went straight on (kept across reloads).
            fresh.noticesDroppedAt = tables.noticesDroppedAt
            var stale: Set<String> = []
            for session in snapshot.impersonations where !session.isOpen && session.noticePending {
                if let replaced = fresh.pendingNotices[session.actorID], fresh.noticeIsNews(session) {
                    stale.insert(replaced.id)
                }
                if fresh.noticeIsNews(session) {
                    fresh.pendingNotices[session.actorID] = session
                } else {
                    stale.insert(session.id)
                }
            }
            tables = fresh
            return stale
        }
        if !stale.isEmpty { droppedNotices.withLock { $0.formUnion(stale) } }
    }

    /// `user` is the current row, or nil when the user no longer exists.
    public func apply(userID: String, user: User?) {
        mutate { tables in
            if let old = tables.users[userID], tables.userIDsByUsername[old.username] == userID {
                tables.userIDsByUsername[old.username] = nil
            }
            tables.users[userID] = user
            if let user {
                tables.userIDsByUsername[user.username] = user.id
            }
            if user == nil || !(user!.status.maySignIn) {
                // Their sessions die with them (the store deletes them too).
                tables.sessions = tables.sessions.filter { $0.value.userID != userID }
            }
        }
    }

    /// A nil `session` is a sign-out (or an expiry): it takes the administrator straight back,
    /// so a notice still pending about an impersonation of that sign-in is dropped (SPEC §7;
    /// another sign-in's notice stays).
    public func apply(sessionHash: String, session: SignInSession?, now: Date = Date()) {
        let dropped: ImpersonationSession? = mutate { tables in
            let previous = tables.sessions[sessionHash]
            tables.sessions[sessionHash] = session
            guard session == nil, let userID = previous?.userID,
                  tables.pendingNotice(actorID: userID, signIn: sessionHash) != nil else { return nil }
            return tables.dropNotice(actorID: userID, at: now)
        }
        if let dropped { droppedNotices.withLock { _ = $0.insert(dropped.id) } }
    }

    public func apply(tokenHash: String, token: APIToken?) {
        mutate { $0.tokens[tokenHash] = (token?.revokedAt == nil) ? token : nil }
    }

    public func apply(keys: [SigningKeyRecord], now: Date) {
        let ring = Self.ring(keys, now: now, grace: keyGracePeriod)
        mutate { $0.keyRing = ring }
    }

    public func apply(consentOf userID: String, consent: Consent?) {
        mutate { $0.consents[userID] = consent }
    }

    /// Applies the current row of an impersonation session; returns the previous open
    /// version, if it was open here (so a caller can tell that this change ended it).
    @discardableResult
    public func apply(impersonationID: String, session: ImpersonationSession?) -> ImpersonationSession? {
        mutate { tables in
            let previous = tables.impersonations[impersonationID]
            if let previous, tables.openImpersonationByActor[previous.actorID] == impersonationID {
                tables.openImpersonationByActor[previous.actorID] = nil
            }
            if let previous { tables.indexTarget(previous, open: false) }
            if let session, session.isOpen {
                tables.impersonations[impersonationID] = session
                tables.openImpersonationByActor[session.actorID] = session.id
                tables.indexTarget(session, open: true)
                // A new session: a notice about an earlier one is no longer news (SPEC §7).
                if tables.pendingNotices[session.actorID]?.id != session.id,
                   let stale = tables.dropNotice(actorID: session.actorID, at: session.startedAt) {
                    droppedNotices.withLock { _ = $0.insert(stale.id) }
                }
            } else {
                tables.impersonations[impersonationID] = nil
            }
            if let session, !session.isOpen {
                if session.noticePending {
                    // Only the latest end is news: an older session's row arriving late is not.
                    if tables.noticeIsNews(session) {
                        tables.pendingNotices[session.actorID] = session
                    } else {
                        if tables.pendingNotices[session.actorID]?.id == session.id { tables.pendingNotices[session.actorID] = nil }
                        droppedNotices.withLock { _ = $0.insert(session.id) }
                    }
                } else if tables.pendingNotices[session.actorID]?.id == session.id {
                    tables.pendingNotices[session.actorID] = nil
                }
            }
            return previous
        }
    }

    /// Ends an open session here and now (the store write follows): from this moment no
    /// request of the actor is forwarded as the target. Returns the ended session, or nil when
    /// it was not open.
    public func end(impersonationID: String, at: Date, reason: EndReason) -> ImpersonationSession? {
        mutate { tables in
            guard var session = tables.impersonations.removeValue(forKey: impersonationID) else { return nil }
            tables.indexTarget(session, open: false)
            if tables.openImpersonationByActor[session.actorID] == impersonationID {
                tables.openImpersonationByActor[session.actorID] = nil
            }
            session.endedAt = at
            session.endReason = reason
            session.noticePending = reason.isAnnounced
            // This end's notice replaces any older one; exit and sign-out leave none (SPEC §7).
            let older = session.noticePending
                ? tables.pendingNotices.removeValue(forKey: session.actorID) : tables.dropNotice(actorID: session.actorID, at: at)
            if let older, older.id != session.id { droppedNotices.withLock { _ = $0.insert(older.id) } }
            if session.noticePending { tables.pendingNotices[session.actorID] = session }
            return session
        }
    }

    /// The administrator has seen why their session ended. True when this call took the notice
    /// (so of two requests racing for it, one shows it).
    @discardableResult
    public func clearNotice(actorID: String, impersonationID: String) -> Bool {
        mutate { tables in
            guard tables.pendingNotices[actorID]?.id == impersonationID else { return false }
            tables.pendingNotices[actorID] = nil
            return true
        }
    }

    /// Exit, sign-out or a new session: the administrator goes straight on, so a notice still
    /// pending about an earlier session is dropped — only the notice meant for `signIn` when
    /// one is given. Returns the session it was about.
    @discardableResult
    public func dropNotice(actorID: String, signIn: String? = nil, at now: Date = Date()) -> ImpersonationSession? {
        let dropped = mutate { tables -> ImpersonationSession? in
            if let signIn, tables.pendingNotice(actorID: actorID, signIn: signIn) == nil { return nil }
            return tables.dropNotice(actorID: actorID, at: now)
        }
        if let dropped { droppedNotices.withLock { _ = $0.insert(dropped.id) } }
        return dropped
    }

    /// Ids of dropped notices the store still has pending (the sweep clears them there).
    public func takeDroppedNotices() -> Set<String> {
        droppedNotices.withLock { ids in
            defer { ids = [] }
            return ids
        }
    }

    public func markDroppedNoticesUncleared(_ ids: Set<String>) {
        droppedNotices.withLock { $0.formUnion(ids) }
    }

    public func markUnpersisted(_ session: ImpersonationSession) {
        unpersisted.withLock { $0.append(session) }
    }

    public func takeUnpersisted() -> [ImpersonationSession] {
        unpersisted.withLock { pending in
            defer { pending = [] }
            return pending
        }
    }

    public var openImpersonations: [ImpersonationSession] {
        tables.withLock { Array($0.impersonations.values) }
    }

    /// Open sessions whose sign-in session is gone (signed out elsewhere, expired, deleted):
    /// nobody can act through them any more (SPEC §7: they belong to that sign-in).
    public func orphanedImpersonations(now: Date) -> [ImpersonationSession] {
        tables.withLock { tables in
            tables.impersonations.values.filter { session in
                guard let hash = session.signInSession else { return false }
                return (tables.sessions[hash]?.expiresAt).map { $0 <= now } ?? true
            }
        }
    }

    /// Drops sessions past their expiry (memory hygiene; resolution checks expiry anyway).
    public func pruneExpired(now: Date) {
        mutate { tables in
            tables.sessions = tables.sessions.filter { $0.value.expiresAt > now }
        }
    }

    /// The newest unretired key signs; keys retired less than `grace` ago stay published.
    static func ring(_ records: [SigningKeyRecord], now: Date, grace: TimeInterval) -> KeyRing? {
        let sorted = records.sorted { $0.createdAt < $1.createdAt }
        guard let current = sorted.last(where: { $0.retiredAt == nil }),
              let signing = try? AssertionKey(rawPrivateKey: current.privateKey) else { return nil }
        let published = sorted.reversed().filter { record in
            record.kid != current.kid && (record.retiredAt.map { now.timeIntervalSince($0) < grace } ?? true)
        }.compactMap { try? AssertionKey(rawPrivateKey: $0.privateKey) }
        return KeyRing(signing: signing, published: published)
    }
}
