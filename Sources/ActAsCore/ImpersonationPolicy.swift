import Foundation

/// How `proxy.conf` sets `impersonation.mode`.
public enum ImpersonationModeSetting: String, Sendable, CaseIterable, Codable {
    case readWrite = "read-write"
    case readOnly = "read-only"
    /// The administrator picks per session; read-only unless they ask otherwise.
    case choose
}

/// The `[impersonation]` rules the policy needs (SPEC §3). Defaults are the sample config's.
public struct ImpersonationRules: Sendable, Equatable {
    /// `consent = "required"`; false for `"off"`.
    public var consentRequired: Bool
    public var consentMaxHours: Int
    public var defaultDuration: TimeInterval
    public var maxDuration: TimeInterval
    public var mode: ImpersonationModeSetting
    /// Counted in characters (grapheme clusters) after trimming surrounding whitespace.
    public var reasonMinLength: Int
    public var impersonableStatuses: Set<User.Status>
    /// When true, a target whose `lastLogin` is nil is refused with `never_logged_in`.
    public var requireFirstLogin: Bool

    public init(
        consentRequired: Bool = true, consentMaxHours: Int = 168, defaultDuration: TimeInterval = 3_600,
        maxDuration: TimeInterval = 86_400, mode: ImpersonationModeSetting = .readWrite, reasonMinLength: Int = 10,
        impersonableStatuses: Set<User.Status> = [.active, .invited], requireFirstLogin: Bool = true
    ) {
        self.consentRequired = consentRequired
        self.consentMaxHours = consentMaxHours
        self.defaultDuration = defaultDuration
        self.maxDuration = maxDuration
        self.mode = mode
        self.reasonMinLength = reasonMinLength
        self.impersonableStatuses = impersonableStatuses
        self.requireFirstLogin = requireFirstLogin
    }
}

/// Who may act as whom, for how long and how (SPEC §4, §6, §7). Pure: callers look the users,
/// consents and sessions up and pass them in.
public struct ImpersonationPolicy: Sendable, Equatable {
    public var roles: RoleRules
    public var rules: ImpersonationRules

    public init(roles: RoleRules, rules: ImpersonationRules) {
        self.roles = roles
        self.rules = rules
    }

    /// What is being decided: a real start request, or a row of the user list (which shows the
    /// first rule that would refuse, ignoring `csrf` and `reason_required`).
    public enum Purpose: Sendable, Equatable {
        case start(reason: String, csrfValid: Bool)
        case listing
    }

    /// The first rule (SPEC §6 order) that refuses `actor` acting as `target`, or nil when allowed.
    /// `target` is nil when no such user exists; `targetConsent` is the target's consent record.
    public func refusal(
        actor: User, target: User?, actorIsImpersonating: Bool, targetConsent: Consent?,
        for purpose: Purpose, now: Date
    ) -> Refusal? {
        if case .start(_, let csrfValid) = purpose, !csrfValid { return .csrf }
        if !roles.mayImpersonate(actor.role) { return .notPermitted }
        if let target, target.id == actor.id { return .self }
        if actorIsImpersonating { return .chaining }
        guard let target else { return .targetNotFound }
        if !rules.impersonableStatuses.contains(target.status) { return .targetStatus }
        if rules.requireFirstLogin && target.lastLogin == nil { return .neverLoggedIn }
        if !roles.outranks(actor.role, target.role) { return .hierarchy }
        if roles.isScoped(actor.role) && !OrgUnit.covers(actor.orgUnit, target.orgUnit) { return .scope }
        if rules.consentRequired && !hasActiveConsent(targetConsent, of: target.id, at: now) { return .consentRequired }
        if case .start(let reason, _) = purpose, !isLongEnough(reason) { return .reasonRequired }
        return nil
    }

    func hasActiveConsent(_ consent: Consent?, of userID: String, at now: Date) -> Bool {
        guard let consent, consent.userID == userID else { return false }
        return consent.isActive(at: now)
    }

    private func isLongEnough(_ reason: String) -> Bool {
        guard rules.reasonMinLength > 0 else { return true }
        return reason.trimmingCharacters(in: .whitespacesAndNewlines).count >= rules.reasonMinLength
    }

    // MARK: Duration and expiry

    /// When a session starting at `start` ends: the requested (else default) duration, capped by
    /// `max_duration` and, when consent is required, by the consent's expiry. Without an active
    /// consent where one is required the session ends at once (fail closed).
    public func expiry(startingAt start: Date, requested: TimeInterval?, targetConsent: Consent?) -> Date {
        let wanted = start.addingTimeInterval(requested ?? rules.defaultDuration)
        return min(wanted, cap(startedAt: start, targetConsent: targetConsent, at: start))
    }

    /// The new end of `session` after an extend request at `now`.
    ///
    /// Like a start, the requested duration is counted from the original start (SPEC §4): asking
    /// for `2h` makes the whole session two hours long. The result is capped at `max_duration`
    /// from the start and at the consent's expiry, and an extend never shortens a session (a
    /// duration already used up leaves `expiresAt` as it is), except that a consent which now
    /// ends sooner still caps it.
    public func extendedExpiry(
        of session: ImpersonationSession, requested: TimeInterval?, targetConsent: Consent?, now: Date
    ) -> Date {
        let wanted = session.startedAt.addingTimeInterval(requested ?? rules.defaultDuration)
        let cap = cap(startedAt: session.startedAt, targetConsent: targetConsent, at: now)
        return min(max(wanted, session.expiresAt), cap)
    }

    private func cap(startedAt start: Date, targetConsent: Consent?, at now: Date) -> Date {
        let longest = start.addingTimeInterval(rules.maxDuration)
        guard rules.consentRequired else { return longest }
        guard let consent = targetConsent, consent.isActive(at: now) else { return now }
        return min(longest, consent.expiresAt)
    }

    // MARK: Mode

    /// The mode a session gets. `requested` is the form/API field; nil or empty means not given.
    ///
    /// - configured `read-only`: read-only whatever was asked;
    /// - `choose`: what was asked, read-only when nothing was;
    /// - `read-write`: read-write, but an explicit request for read-only is honoured (asking for
    ///   less power is always fine).
    /// A value other than `read-write`/`read-only` (exact, lower case) is `invalid_mode` under
    /// every setting, so a typo is reported rather than silently replaced.
    public func mode(requested: String?) throws(InvalidInput) -> ImpersonationMode {
        var asked: ImpersonationMode?
        if let requested, !requested.isEmpty {
            guard let mode = ImpersonationMode(rawValue: requested) else { throw .mode }
            asked = mode
        }
        switch rules.mode {
        case .readOnly: return .readOnly
        case .choose: return asked ?? .readOnly
        case .readWrite: return asked ?? .readWrite
        }
    }

    // MARK: Consent

    /// `hours` if it is within 1...`consent_max_hours`, else `invalid_hours`.
    public func consentHours(_ hours: Int) throws(InvalidInput) -> Int {
        guard hours >= 1 && hours <= rules.consentMaxHours else { throw .hours(maximum: rules.consentMaxHours) }
        return hours
    }

    /// Form and CLI text: ASCII digits only (no sign, spaces or fraction), then the same bounds.
    public func consentHours(parsing text: String) throws(InvalidInput) -> Int {
        guard !text.isEmpty, text.utf8.count <= 9,
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let hours = Int(text)
        else { throw .hours(maximum: rules.consentMaxHours) }
        return try consentHours(hours)
    }

    /// A fresh consent for `userID`, valid `hours` from `now`.
    public func consent(for userID: String, hours: Int, now: Date) throws(InvalidInput) -> Consent {
        let hours = try consentHours(hours)
        return Consent(userID: userID, grantedAt: now, expiresAt: now.addingTimeInterval(TimeInterval(hours) * 3_600))
    }
}
