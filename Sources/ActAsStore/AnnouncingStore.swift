import ActAsCore
import Foundation
import Logging

/// The store as a running instance uses it: a write that changes who may do what (made through
/// this instance's console or API) is announced to the OTHER running instances, each told to
/// apply the change feed up to that write, before the call returns (SPEC §10.1; this instance
/// applied it in-process already). An instance that cannot confirm within the bound is logged
/// and still applies the change at its next poll. With PostgreSQL the same decorator applies;
/// only the wake-up could become LISTEN/NOTIFY.
public final class AnnouncingStore: Store {
    public let base: any Store
    private let instanceID: String
    private let logger: Logger

    public init(_ base: any Store, instanceID: String, logger: Logger) {
        self.base = base
        self.instanceID = instanceID
        self.logger = logger
    }

    /// Tells every other recorded instance, stale rows too (a live one whose heartbeat is late
    /// still enforces; one whose port refuses is not running); waits for each (bounded), never
    /// fails the caller: the change is stored and enforced here.
    func announce() async {
        do {
            let others = try await base.instances().filter { $0.id != instanceID }
            guard !others.isEmpty else { return }
            let change = try await base.latestChangeID()
            for (instance, outcome) in await InstanceNotifier.announce(change: change, to: others) {
                if case .failed(let why) = outcome {
                    logger.warning("instance \(TerminalText.safe(instance.id)) (admin \(TerminalText.safe(instance.adminAddress))) did not confirm change \(change): \(TerminalText.safe(why))")
                }
            }
        } catch {
            logger.warning("cannot tell the other instances about a change: \(error)")
        }
    }

    private func announcing<T>(_ body: () async throws -> T) async throws -> T {
        let result = try await body()
        await announce()
        return result
    }

    public func migrate() async throws { try await base.migrate() }
    public func close() async { await base.close() }
    public func snapshot(now: Date) async throws -> StoreSnapshot { try await base.snapshot(now: now) }
    public func changes(after id: Int64, limit: Int) async throws -> [Change]? { try await base.changes(after: id, limit: limit) }
    public func pruneChanges(before: Date) async throws { try await base.pruneChanges(before: before) }

    public func users() async throws -> [User] { try await base.users() }
    public func user(id: String) async throws -> User? { try await base.user(id: id) }
    public func user(username: String) async throws -> User? { try await base.user(username: username) }
    public func saveUsers(_ users: [User]) async throws { try await announcing { try await base.saveUsers(users) } }
    public func recordSignIn(userID: String, at: Date, session: SignInSession) async throws -> User {
        try await announcing { try await base.recordSignIn(userID: userID, at: at, session: session) }
    }

    public func session(idHash: String) async throws -> SignInSession? { try await base.session(idHash: idHash) }
    public func deleteSession(idHash: String) async throws { try await announcing { try await base.deleteSession(idHash: idHash) } }
    public func deleteExpiredSessions(before: Date) async throws -> Int { try await base.deleteExpiredSessions(before: before) }

    public func insertToken(_ token: APIToken) async throws { try await announcing { try await base.insertToken(token) } }
    public func tokens(userID: String?) async throws -> [APIToken] { try await base.tokens(userID: userID) }
    public func token(hash: String) async throws -> APIToken? { try await base.token(hash: hash) }
    public func revokeToken(id: String, at: Date) async throws -> APIToken {
        try await announcing { try await base.revokeToken(id: id, at: at) }
    }

    public func signingKeys() async throws -> [SigningKeyRecord] { try await base.signingKeys() }
    public func addSigningKey(_ key: SigningKeyRecord, retiring expectedCurrent: String?, at: Date) async throws -> Bool {
        try await announcing { try await base.addSigningKey(key, retiring: expectedCurrent, at: at) }
    }
    public func deleteSigningKeys(retiredBefore: Date) async throws { try await base.deleteSigningKeys(retiredBefore: retiredBefore) }
    public func retiredPublicKeys() async throws -> [RetiredPublicKey] { try await base.retiredPublicKeys() }

    public func consent(userID: String) async throws -> Consent? { try await base.consent(userID: userID) }
    public func saveConsent(_ consent: Consent) async throws { try await announcing { try await base.saveConsent(consent) } }

    public func impersonation(id: String) async throws -> ImpersonationSession? { try await base.impersonation(id: id) }
    public func impersonations(activeOnly: Bool) async throws -> [ImpersonationSession] { try await base.impersonations(activeOnly: activeOnly) }
    public func startImpersonation(_ session: ImpersonationSession) async throws -> Bool {
        try await announcing { try await base.startImpersonation(session) }
    }
    public func updateImpersonation(_ session: ImpersonationSession) async throws {
        try await announcing { try await base.updateImpersonation(session) }
    }
    public func impersonations(actorID: String?, targetID: String?, limit: Int) async throws -> [ImpersonationSession] {
        try await base.impersonations(actorID: actorID, targetID: targetID, limit: limit)
    }
    public func endImpersonation(id: String, at: Date, reason: EndReason, notice: Bool) async throws -> ImpersonationSession? {
        try await announcing { try await base.endImpersonation(id: id, at: at, reason: reason, notice: notice) }
    }
    // Shown once: another instance must not show the same end notice again.
    public func clearEndNotice(id: String) async throws { try await announcing { try await base.clearEndNotice(id: id) } }

    public func latestChangeID() async throws -> Int64 { try await base.latestChangeID() }
    public func registerInstance(_ instance: InstanceRecord) async throws { try await base.registerInstance(instance) }
    public func touchInstance(id: String, startedAt: Date, at: Date) async throws -> Bool {
        try await base.touchInstance(id: id, startedAt: startedAt, at: at)
    }
    public func removeInstance(id: String, startedAt: Date) async throws { try await base.removeInstance(id: id, startedAt: startedAt) }
    public func forgetInstances(lastSeenBefore before: Date) async throws { try await base.forgetInstances(lastSeenBefore: before) }
    public func instances() async throws -> [InstanceRecord] { try await base.instances() }

    public func appendSessionAudit(_ lines: [SessionAuditLine]) async throws { try await base.appendSessionAudit(lines) }
    public func sessionAudit(sessionID: String) async throws -> [SessionAuditLine] { try await base.sessionAudit(sessionID: sessionID) }
    public func saveCheckpoint(_ checkpoint: AuditCheckpoint) async throws { try await base.saveCheckpoint(checkpoint) }
    public func latestCheckpoint(instance: String) async throws -> AuditCheckpoint? { try await base.latestCheckpoint(instance: instance) }

    public func oidcUserID(issuer: String, subject: String) async throws -> String? { try await base.oidcUserID(issuer: issuer, subject: subject) }
    public func users(email: String) async throws -> [User] { try await base.users(email: email) }
    public func recordOIDCSignIn(_ record: OIDCSignInRecord, user: User, session: SignInSession, at: Date) async throws -> User {
        try await announcing { try await base.recordOIDCSignIn(record, user: user, session: session, at: at) }
    }
    public func oidcSignIn(sessionHash: String) async throws -> OIDCSignInRecord? { try await base.oidcSignIn(sessionHash: sessionHash) }
    public func oidcSignIns(issuer: String, providerSessionID: String?, subject: String?) async throws -> [OIDCSignInRecord] {
        try await base.oidcSignIns(issuer: issuer, providerSessionID: providerSessionID, subject: subject)
    }
    public func oidcIdentities() async throws -> [OIDCIdentityLink] { try await base.oidcIdentities() }
    public func saveOIDCIdentities(_ links: [OIDCIdentityLink]) async throws { try await base.saveOIDCIdentities(links) }
    public func claimOnce(_ kind: OneUseKind, key: String, until: Date, now: Date) async throws -> Bool {
        try await base.claimOnce(kind, key: key, until: until, now: now)
    }
    public func oneUseClaimCount() async throws -> Int { try await base.oneUseClaimCount() }

    public func enqueueNotification(_ notification: OutboxNotification) async throws { try await base.enqueueNotification(notification) }
    public func claimNotification(owner: String, now: Date, lease: TimeInterval) async throws -> OutboxNotification? {
        try await base.claimNotification(owner: owner, now: now, lease: lease)
    }
    public func finishNotification(seq: Int64, owner: String, outcome: OutboxOutcome, now: Date) async throws {
        try await base.finishNotification(seq: seq, owner: owner, outcome: outcome, now: now)
    }
    public func releaseNotifications(owner: String) async throws { try await base.releaseNotifications(owner: owner) }
    public func notificationStats() async throws -> OutboxStats { try await base.notificationStats() }
    public func pruneNotifications(doneBefore: Date) async throws { try await base.pruneNotifications(doneBefore: doneBefore) }
}
