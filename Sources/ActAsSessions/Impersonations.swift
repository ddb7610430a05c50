import ActAsAudit
import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsStore
import Foundation
import Synchronization

extension ImpersonationPolicy {
    public init(config: ActAsConfig) {
        let roles = RoleRules(
            order: config.roles.order, impersonators: config.roles.impersonators,
            scoped: config.roles.scoped, auditors: config.roles.auditors)
        let settings = config.impersonation
        let rules = ImpersonationRules(
            consentRequired: settings.consentRequired, consentMaxHours: settings.consentMaxHours,
            defaultDuration: settings.defaultDuration.seconds, maxDuration: settings.maxDuration.seconds,
            mode: ImpersonationModeSetting(rawValue: settings.mode) ?? .readOnly,
            reasonMinLength: settings.reasonMinLength,
            impersonableStatuses: Set(settings.impersonableStatuses.compactMap(User.Status.init(rawValue:))),
            requireFirstLogin: settings.requireFirstLogin)
        self.init(roles: roles, rules: rules)
    }
}

/// Impersonation sessions and consent: start, extend, end, grant, revoke — and ending
/// sessions the moment a rule says so. Every change reaches the live state before the call
/// returns (the request path enforces from there), then the store; every change is an event.
public final class Impersonations: Sendable {
    public let store: any Store
    public let live: LiveState
    /// The rules as of the last (re)load; every decision reads it afresh (see PolicyReload.swift).
    public var policy: ImpersonationPolicy { currentPolicy.withLock { $0 } }
    let currentPolicy: Mutex<ImpersonationPolicy>
    public let events: any AuditSink
    /// Requests in flight per session (the proxy counts them).
    public let activity = SessionActivity()
    /// Consents already reported as expired (one `consent_expired` event each).
    private let reportedExpiries = Mutex<Set<String>>([])

    public init(store: any Store, live: LiveState, policy: ImpersonationPolicy, events: any AuditSink) {
        self.store = store
        self.live = live
        self.currentPolicy = Mutex(policy)
        self.events = events
    }

    public enum Failure: Error, Equatable {
        case refused(Refusal)
        case invalid(InvalidInput)
        /// API tokens act for scripts; impersonation needs a person at a browser.
        case interactiveOnly
        case notImpersonating

        public var code: String {
            switch self {
            case .refused(let refusal): return refusal.code
            case .invalid(let invalid): return invalid.code
            case .interactiveOnly: return "interactive_only"
            case .notImpersonating: return "not_impersonating"
            }
        }

        public var httpStatus: Int {
            switch self {
            case .refused(let refusal): return refusal.httpStatus
            case .invalid(let invalid): return invalid.httpStatus
            case .interactiveOnly: return 403
            case .notImpersonating: return 404
            }
        }

        public var sentence: String {
            switch self {
            case .refused(let refusal): return refusal.sentence
            case .invalid(let invalid): return invalid.sentence
            case .interactiveOnly: return "API tokens cannot act as other users; sign in with a browser."
            case .notImpersonating: return "You are not acting as anyone."
            }
        }
    }

    // MARK: start, extend, end

    public struct StartRequest: Sendable {
        public var target: String
        public var reason: String
        public var mode: String?
        public var duration: String?
        public var csrfValid: Bool

        public init(target: String, reason: String, mode: String?, duration: String?, csrfValid: Bool) {
            self.target = target
            self.reason = reason
            self.mode = mode
            self.duration = duration
            self.csrfValid = csrfValid
        }
    }

    /// The first rule that refuses, in SPEC §6 order (with `interactive_only` for tokens and
    /// the input checks after the rules); the refusal is itself an audit event.
    public func start(_ request: StartRequest, by principal: LiveState.Principal, context: EventContext, now: Date = Date()) async throws -> Result<ImpersonationSession, Failure> {
        let actor = principal.user
        let reason = request.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        func denied(_ failure: Failure) -> Result<ImpersonationSession, Failure> {
            events.record(AuditRecord(
                type: .impersonationDenied, requestID: context.requestID, clientIP: context.clientIP, user: actor.username,
                reason: failure.code, target: request.target, justification: reason.isEmpty ? nil : reason))
            notifyDenied(actor: actor, target: request.target, reason: reason, now: now)
            return .failure(failure)
        }
        guard principal.token == nil else { return denied(.interactiveOnly) }
        let (target, consent, impersonating) = live.read { tables in
            let target = tables.user(username: request.target)
            return (target, target.flatMap { tables.consents[$0.id] }, tables.openImpersonation(actorID: actor.id) != nil)
        }
        if let refusal = policy.refusal(
            actor: actor, target: target, actorIsImpersonating: impersonating, targetConsent: consent,
            for: .start(reason: reason, csrfValid: request.csrfValid), now: now)
        {
            return denied(.refused(refusal))
        }
        guard let target else { return denied(.refused(.targetNotFound)) }
        let mode: ImpersonationMode
        let duration: TimeInterval?
        do {
            mode = try policy.mode(requested: request.mode)
            // Absent: the default. Present but empty or garbled: `invalid_duration` (SPEC §4).
            duration = try request.duration.map { try DurationText.parse($0) }
        } catch {
            return denied(.invalid(error as? InvalidInput ?? .duration))
        }
        let session = ImpersonationSession(
            id: Secrets.identifier(prefix: "imp_"), actorID: actor.id, targetID: target.id, reason: reason, mode: mode,
            startedAt: now, expiresAt: policy.expiry(startingAt: now, requested: duration, targetConsent: consent).wholeSecondsDown,
            signInSession: principal.session?.idHash)
        guard try await store.startImpersonation(session) else { return denied(.refused(.chaining)) }
        live.apply(impersonationID: session.id, session: session)  // drops a notice about an earlier session
        await clearDroppedNotices()
        events.record(AuditRecord(
            type: .impersonationStarted, requestID: context.requestID, clientIP: context.clientIP, user: target.username,
            impersonator: actor.username, sessionID: session.id, mode: mode, justification: reason,
            expiresAt: AuditTimestamp(session.expiresAt)))
        return .success(session)
    }

    /// A new end within `max_duration` and the consent, counted from the original start.
    public func extend(by principal: LiveState.Principal, duration: String?, context: EventContext, now: Date = Date()) async throws -> Result<ImpersonationSession, Failure> {
        guard principal.token == nil else { return .failure(.interactiveOnly) }
        guard var session = live.read({ $0.openImpersonation(actorID: principal.user.id, signIn: principal.session?.idHash) }) else {
            return .failure(.notImpersonating)
        }
        let requested: TimeInterval?
        do {
            requested = try duration.map { try DurationText.parse($0) }
        } catch {
            return .failure(.invalid(error as? InvalidInput ?? .duration))
        }
        let consent = live.read { $0.consents[session.targetID] }
        // Whole seconds, as `expires_at` and `X-Impersonation-Expires` show it (see `wholeSecondsDown`).
        session.expiresAt = policy.extendedExpiry(of: session, requested: requested, targetConsent: consent, now: now).wholeSecondsDown
        try await store.updateImpersonation(session)
        live.apply(impersonationID: session.id, session: session)
        return .success(session)
    }

    /// Ends `session` now: live state first (nothing more is forwarded as the target), the
    /// event, then the store. Safe to call from an event loop; returns false if it had ended.
    @discardableResult
    public func end(_ sessionID: String, reason: EndReason, context: EventContext, now: Date = Date()) -> Bool {
        guard let ended = live.end(impersonationID: sessionID, at: now, reason: reason) else { return false }
        recordEnd(ended, context: context)
        let store = self.store
        let live = self.live
        Task {
            do {
                _ = try await store.endImpersonation(id: ended.id, at: now, reason: reason, notice: ended.noticePending)
            } catch {
                // The live state already enforces the end; the sweep retries the write.
                live.markUnpersisted(ended)
            }
        }
        return true
    }

    /// The same, waiting for the store (console and CLI paths, which may await).
    public func endAndPersist(_ sessionID: String, reason: EndReason, context: EventContext, now: Date = Date()) async throws -> Bool {
        guard let ended = live.end(impersonationID: sessionID, at: now, reason: reason) else { return false }
        recordEnd(ended, context: context)
        _ = try await store.endImpersonation(id: ended.id, at: now, reason: reason, notice: ended.noticePending)
        await clearDroppedNotices()
        await activity.waitUntilIdle([ended.id])
        return true
    }

    /// Exit with nothing open (the session had ended, say by a revocation, and the banner's Exit
    /// was pressed): straight back, so the notice about it is dropped too (SPEC §7) — the
    /// notice meant for that sign-in, not another browser's.
    public func dropNotice(of actor: User, signIn: String?, now: Date = Date()) async {
        guard signIn != nil else { return }
        live.dropNotice(actorID: actor.id, signIn: signIn, at: now)
        await clearDroppedNotices()
    }

    /// Notices dropped in the live state are cleared in the store, so neither a restart nor
    /// another instance shows them again; failures are retried by the sweep.
    func clearDroppedNotices() async {
        let ids = live.takeDroppedNotices()
        var failed: Set<String> = []
        for id in ids {
            do {
                try await store.clearEndNotice(id: id)
            } catch {
                failed.insert(id)
            }
        }
        if !failed.isEmpty { live.markDroppedNoticesUncleared(failed) }
    }

    func recordEnd(_ session: ImpersonationSession, context: EventContext) {
        let (actor, target) = live.read { ($0.users[session.actorID]?.username, $0.users[session.targetID]?.username) }
        events.record(AuditRecord(
            type: .impersonationEnded, requestID: context.requestID, clientIP: context.clientIP, user: target,
            impersonator: actor, sessionID: session.id, mode: session.mode, endReason: session.endReason))
    }

    /// The first request after an announced end has been answered with the notice.
    public func noticeShown(_ session: ImpersonationSession) {
        live.clearNotice(actorID: session.actorID, impersonationID: session.id)
        let store = self.store
        Task { try? await store.clearEndNotice(id: session.id) }
    }

    /// Why `principal`'s open session must end now, if it must (the per-request check).
    public func endReason(_ principal: LiveState.Principal, now: Date) -> EndReason? {
        guard let session = principal.impersonation else { return nil }
        return policy.endReason(for: session, actor: principal.user, target: principal.target, targetConsent: principal.targetConsent, now: now)
    }

    // MARK: consent

    public func grantConsent(_ user: User, hours: Int, context: EventContext, now: Date = Date()) async throws -> Result<Consent, Failure> {
        let consent: Consent
        do {
            consent = try policy.consent(for: user.id, hours: hours, now: now)
        } catch {
            return .failure(.invalid(error))
        }
        // Live first, like every change made here: the change feed then finds nothing new and
        // does not report it a second time as a change made elsewhere.
        let previous = live.read { $0.consents[user.id] }
        live.apply(consentOf: user.id, consent: consent)
        do {
            try await store.saveConsent(consent)
        } catch {
            live.apply(consentOf: user.id, consent: previous)
            throw error
        }
        _ = reportedExpiries.withLock { $0.remove(user.id) }
        events.record(AuditRecord(
            type: .consentGranted, requestID: context.requestID, clientIP: context.clientIP, user: user.username,
            expiresAt: AuditTimestamp(consent.expiresAt)))
        return .success(consent)
    }

    /// Revokes consent and ends every session acting as `user` before returning.
    public func revokeConsent(_ user: User, context: EventContext, now: Date = Date()) async throws -> Consent? {
        var current = live.read { $0.consents[user.id] }
        if current == nil { current = try await store.consent(userID: user.id) }
        guard var consent = current, consent.revokedAt == nil else { return nil }
        consent.revokedAt = now
        // Live first: from here on no request is forwarded as `user` by anyone.
        live.apply(consentOf: user.id, consent: consent)
        var ended: [String] = []
        for session in live.openImpersonations where session.targetID == user.id {
            if end(session.id, reason: .consentRevoked, context: context, now: now) { ended.append(session.id) }
        }
        try await store.saveConsent(consent)
        // Requests already forwarded as `user` finish before the revocation is confirmed.
        await activity.waitUntilIdle(ended)
        events.record(AuditRecord(type: .consentRevoked, requestID: context.requestID, clientIP: context.clientIP, user: user.username))
        return consent
    }

    // MARK: sweep

    /// Ends every open session a rule now ends (time limits, consent, status and role changes
    /// made elsewhere), reports expired consents once, and retries store writes that failed.
    /// Runs a few times a second; the request path checks on its own as well.
    public func sweep(now: Date = Date()) async {
        let (open, users, consents) = live.read { ($0.impersonations, $0.users, $0.consents) }
        for session in open.values {
            if let reason = policy.endReason(
                for: session, actor: users[session.actorID], target: users[session.targetID],
                targetConsent: consents[session.targetID], now: now)
            {
                end(session.id, reason: reason, context: EventContext(), now: now)
            }
        }
        // The sign-in that started a session is gone (expired, or signed out through another
        // instance): nobody acts through it any more, so it ends as that sign-out, and the
        // administrator's next sign-in may start a new one instead of meeting `chaining`.
        for session in live.orphanedImpersonations(now: now) {
            end(session.id, reason: .actorSignedOut, context: EventContext(), now: now)
        }
        for consent in consents.values where consent.revokedAt == nil && consent.expiresAt <= now {
            let fresh = reportedExpiries.withLock { $0.insert(consent.userID).inserted }
            // Only consents that expired while this process watched: not every old one at start.
            if fresh, now.timeIntervalSince(consent.expiresAt) < 60 {
                events.record(AuditRecord(type: .consentExpired, user: users[consent.userID]?.username,
                                          expiresAt: AuditTimestamp(consent.expiresAt)))
            }
        }
        await clearDroppedNotices()
        for session in live.takeUnpersisted() {
            do {
                _ = try await store.endImpersonation(id: session.id, at: session.endedAt ?? now, reason: session.endReason ?? .endedByOperator,
                                                     notice: session.noticePending)
            } catch {
                live.markUnpersisted(session)
            }
        }
    }

    /// Sessions ended by another process (`actas sessions end`, another instance): the event
    /// is recorded here, where the administrator's requests are refused.
    public func endedElsewhere(_ session: ImpersonationSession) {
        recordEnd(session, context: .operatorCommand)
    }

    /// Consent granted or revoked by another process: the event, and (for a revocation) the
    /// sessions acting as that user end now rather than at the next sweep.
    public func consentChangedElsewhere(before: Consent?, after: Consent?) {
        guard let after else { return }
        let username = live.read { $0.users[after.userID]?.username }
        if after.revokedAt != nil, before?.revokedAt == nil || before?.grantedAt != after.grantedAt {
            events.record(AuditRecord(type: .consentRevoked, user: username, actor: "operator"))
            for session in live.openImpersonations where session.targetID == after.userID {
                end(session.id, reason: .consentRevoked, context: .operatorCommand)
            }
        } else if after.revokedAt == nil, before?.grantedAt != after.grantedAt {
            _ = reportedExpiries.withLock { $0.remove(after.userID) }
            events.record(AuditRecord(type: .consentGranted, user: username, actor: "operator", expiresAt: AuditTimestamp(after.expiresAt)))
        }
    }

    // MARK: user list

    public struct Row: Sendable {
        public var user: User
        public var refusal: Refusal?
    }

    /// Users matching `query` (username, name or email, case-insensitive), each with the first
    /// rule that would refuse acting as them (ignoring csrf and reason).
    public func rows(for actor: User, query: String, now: Date = Date()) -> [Row] {
        let needle = query.trimmingCharacters(in: .whitespaces).lowercased()
        let (users, consents, impersonating) = live.read { tables in
            (Array(tables.users.values), tables.consents, tables.openImpersonation(actorID: actor.id) != nil)
        }
        return users
            .filter { user in
                needle.isEmpty || user.username.lowercased().contains(needle) || user.name.lowercased().contains(needle)
                    || user.email.lowercased().contains(needle)
            }
            .sorted { ($0.displayName.lowercased(), $0.username) < ($1.displayName.lowercased(), $1.username) }
            .map { user in
                Row(user: user, refusal: policy.refusal(
                    actor: actor, target: user, actorIsImpersonating: impersonating, targetConsent: consents[user.id],
                    for: .listing, now: now))
            }
    }
}

/// Requests forwarded as the target that have not been answered yet, per impersonation
/// session. Ending a session waits (briefly) until none is left, so when a revocation or an
/// exit returns, nothing is still on its way to the application as the target.
public final class SessionActivity: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    public init() {}

    public func begin(_ sessionID: String) {
        counts.withLock { $0[sessionID, default: 0] += 1 }
    }

    public func end(_ sessionID: String) {
        counts.withLock { counts in
            let left = (counts[sessionID] ?? 1) - 1
            counts[sessionID] = left > 0 ? left : nil
        }
    }

    public func inFlight(_ sessionID: String) -> Int {
        counts.withLock { $0[sessionID] ?? 0 }
    }

    /// Returns when no request of the session is in flight, or after `timeout`.
    public func waitUntilIdle(_ sessionIDs: [String], timeout: Duration = .seconds(2)) async {
        let deadline = ContinuousClock.now + timeout
        while sessionIDs.contains(where: { inFlight($0) > 0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }
}
