import Foundation
import Testing
@testable import ActAsCore

/// Everything a start decision depends on, allowed as built; each test breaks something.
struct StartScenario {
    var actor = hrAdmin
    var target: User? = employee
    var actorIsImpersonating = false
    var consent: Consent? = activeConsent
    var reason = "Ticket 4521: invoices missing"
    var csrfValid = true
    var policy = samplePolicy

    func refusal() -> Refusal? {
        policy.refusal(
            actor: actor, target: target, actorIsImpersonating: actorIsImpersonating, targetConsent: consent,
            for: .start(reason: reason, csrfValid: csrfValid), now: now
        )
    }

    func listingRefusal() -> Refusal? {
        policy.refusal(
            actor: actor, target: target, actorIsImpersonating: actorIsImpersonating, targetConsent: consent,
            for: .listing, now: now
        )
    }
}

/// One way of breaking one rule.
struct RuleBreak: Sendable, CustomTestStringConvertible {
    let expected: Refusal
    let label: String
    let apply: @Sendable (inout StartScenario) -> Void

    init(_ expected: Refusal, _ label: String, _ apply: @escaping @Sendable (inout StartScenario) -> Void) {
        self.expected = expected
        self.label = label
        self.apply = apply
    }

    var testDescription: String { "\(expected.code): \(label)" }
}

/// Exactly one rule broken per entry (except `self`, which also makes the ranks equal).
let ruleBreaks: [RuleBreak] = [
    RuleBreak(.csrf, "bad token") { $0.csrfValid = false },
    RuleBreak(.notPermitted, "manager") { $0.actor.role = "manager" },
    RuleBreak(.notPermitted, "role not in order") { $0.actor.role = "intern" },
    RuleBreak(.self, "target is actor") { $0.target = $0.actor },
    RuleBreak(.chaining, "already impersonating") { $0.actorIsImpersonating = true },
    RuleBreak(.targetNotFound, "no such user") { $0.target = nil },
    RuleBreak(.targetStatus, "suspended") { $0.target?.status = .suspended },
    RuleBreak(.targetStatus, "deleted") { $0.target?.status = .deleted },
    RuleBreak(.targetStatus, "invited, when only active is impersonable") { scenario in
        scenario.target?.status = .invited
        scenario.policy.rules.impersonableStatuses = [.active]
    },
    RuleBreak(.neverLoggedIn, "no last login") { $0.target?.lastLogin = nil },
    RuleBreak(.hierarchy, "equal rank") { $0.target?.role = "hr_admin" },
    RuleBreak(.hierarchy, "higher rank") { $0.target?.role = "owner" },
    RuleBreak(.scope, "sibling unit") { $0.target?.orgUnit = "acme/apac/sales" },
    RuleBreak(.scope, "prefix-alike unit") { $0.target?.orgUnit = "acme/emea-evil" },
    RuleBreak(.scope, "parent unit") { $0.target?.orgUnit = "acme" },
    RuleBreak(.scope, "no unit") { $0.target?.orgUnit = "" },
    RuleBreak(.scope, "scoped actor without unit") { $0.actor.orgUnit = "" },
    RuleBreak(.consentRequired, "no consent") { $0.consent = nil },
    RuleBreak(.consentRequired, "revoked consent") { $0.consent?.revokedAt = now - minutes(5) },
    RuleBreak(.consentRequired, "expired consent") { $0.consent?.expiresAt = now - minutes(1) },
    RuleBreak(.consentRequired, "consent ends right now") { $0.consent?.expiresAt = now },
    RuleBreak(.consentRequired, "someone else's consent") { $0.consent?.userID = "usr_other" },
    RuleBreak(.reasonRequired, "short") { $0.reason = "because" },
    RuleBreak(.reasonRequired, "long only with padding") { $0.reason = "   bug 12   \n" },
    RuleBreak(.reasonRequired, "empty") { $0.reason = "" },
]

/// One break per code, in SPEC §6 order.
let oneBreakPerRule: [RuleBreak] = Refusal.allCases.map { code in ruleBreaks.first { $0.expected == code }! }

@Suite struct ImpersonationRefusalTests {
    @Test func baselineIsAllowed() {
        #expect(StartScenario().refusal() == nil)
        #expect(StartScenario().listingRefusal() == nil)
    }

    @Test(arguments: ruleBreaks)
    func eachRuleRefusesWithItsCode(_ ruleBreak: RuleBreak) {
        var scenario = StartScenario()
        ruleBreak.apply(&scenario)
        #expect(scenario.refusal() == ruleBreak.expected)
    }

    @Test func codesAndStatusesAreTheContract() {
        #expect(Refusal.allCases.map(\.code) == [
            "csrf", "not_permitted", "self", "chaining", "target_not_found", "target_status", "never_logged_in",
            "hierarchy", "scope", "consent_required", "reason_required",
        ])
        for refusal in Refusal.allCases {
            let expected = refusal == .targetNotFound ? 404 : refusal == .reasonRequired ? 422 : 403
            #expect(refusal.httpStatus == expected, "\(refusal.code)")
            #expect(refusal.sentence.hasSuffix("."), "\(refusal.code)")
        }
    }

    /// Break every rule, then repair them from the first on: each time the earliest broken rule
    /// must be the one reported.
    @Test func rulesAreCheckedInSpecOrder() {
        for first in oneBreakPerRule.indices {
            var scenario = StartScenario()
            // Later rules first, so that `self` (which replaces the target) goes last.
            for ruleBreak in oneBreakPerRule[first...].reversed() { ruleBreak.apply(&scenario) }
            #expect(scenario.refusal() == oneBreakPerRule[first].expected)
        }
    }

    @Test(arguments: 0..<Refusal.allCases.count)
    func theEarlierOfTwoBrokenRulesIsReported(earlier: Int) {
        for later in (earlier + 1)..<oneBreakPerRule.count {
            var scenario = StartScenario()
            oneBreakPerRule[later].apply(&scenario)
            oneBreakPerRule[earlier].apply(&scenario)
            #expect(scenario.refusal() == oneBreakPerRule[earlier].expected, "with \(oneBreakPerRule[later].expected.code)")
        }
    }

    @Test func listingIgnoresCSRFAndReason() {
        var scenario = StartScenario()
        scenario.csrfValid = false
        scenario.reason = ""
        #expect(scenario.refusal() == .csrf)
        #expect(scenario.listingRefusal() == nil)
        scenario.consent = nil
        #expect(scenario.listingRefusal() == .consentRequired)
    }

    @Test(arguments: oneBreakPerRule.filter { $0.expected != .csrf && $0.expected != .reasonRequired })
    func listingReportsEveryOtherRule(_ ruleBreak: RuleBreak) {
        var scenario = StartScenario()
        ruleBreak.apply(&scenario)
        #expect(scenario.listingRefusal() == ruleBreak.expected)
    }

    @Test func unscopedActorMayActAcrossUnits() {
        var scenario = StartScenario()
        scenario.actor = User(id: "usr_root", username: "root", role: "super_admin", orgUnit: "", lastLogin: now)
        scenario.target?.orgUnit = "globex/apac"
        #expect(scenario.refusal() == nil)
        scenario.target?.role = "hr_admin"
        #expect(scenario.refusal() == nil)
    }

    @Test func switchedOffRulesDoNotRefuse() {
        var scenario = StartScenario()
        scenario.policy.rules.consentRequired = false
        scenario.policy.rules.requireFirstLogin = false
        scenario.policy.rules.reasonMinLength = 0
        scenario.consent = nil
        scenario.target?.lastLogin = nil
        scenario.reason = ""
        #expect(scenario.refusal() == nil)
    }

    @Test func reasonLengthCountsCharactersAfterTrimming() {
        var scenario = StartScenario()
        scenario.policy.rules.reasonMinLength = 5
        scenario.reason = "  ébène \n"  // five characters once trimmed
        #expect(scenario.refusal() == nil)
        scenario.reason = "  👩‍💻👩‍💻👩‍💻👩‍💻 "  // four characters, many bytes
        #expect(scenario.refusal() == .reasonRequired)
    }
}

@Suite struct ExpiryTests {
    let start = now

    @Test func defaultDurationWhenNoneRequested() {
        var rules = ImpersonationRules(consentRequired: false)
        rules.defaultDuration = minutes(45)
        let policy = ImpersonationPolicy(roles: sampleRoles, rules: rules)
        #expect(policy.expiry(startingAt: start, requested: nil, targetConsent: nil) == start + minutes(45))
    }

    @Test func requestedDurationIsCappedByMaxDuration() {
        let policy = ImpersonationPolicy(roles: sampleRoles, rules: ImpersonationRules(consentRequired: false, maxDuration: hours(24)))
        #expect(policy.expiry(startingAt: start, requested: hours(2), targetConsent: nil) == start + hours(2))
        #expect(policy.expiry(startingAt: start, requested: hours(48), targetConsent: nil) == start + hours(24))
    }

    @Test func consentExpiryCapsWhenConsentIsRequired() {
        let consent = Consent(userID: employee.id, grantedAt: start - hours(5), expiresAt: start + minutes(30))
        #expect(samplePolicy.expiry(startingAt: start, requested: hours(2), targetConsent: consent) == start + minutes(30))
        let noConsentNeeded = ImpersonationPolicy(roles: sampleRoles, rules: ImpersonationRules(consentRequired: false))
        #expect(noConsentNeeded.expiry(startingAt: start, requested: hours(2), targetConsent: consent) == start + hours(2))
    }

    @Test func missingConsentEndsAtOnce() {
        #expect(samplePolicy.expiry(startingAt: start, requested: hours(2), targetConsent: nil) == start)
        var revoked = activeConsent
        revoked.revokedAt = start - 1
        #expect(samplePolicy.expiry(startingAt: start, requested: hours(2), targetConsent: revoked) == start)
    }

    var session: ImpersonationSession {
        ImpersonationSession(
            id: "imp_1", actorID: hrAdmin.id, targetID: employee.id, reason: "Ticket 4521", mode: .readWrite,
            startedAt: start, expiresAt: start + hours(1)
        )
    }

    var longConsent: Consent { Consent(userID: employee.id, grantedAt: start - hours(1), expiresAt: start + hours(100)) }

    @Test func extendCountsFromTheOriginalStart() {
        let later = start + minutes(50)
        #expect(samplePolicy.extendedExpiry(of: session, requested: hours(2), targetConsent: longConsent, now: later) == start + hours(2))
    }

    @Test func extendIsCappedByMaxDurationFromTheOriginalStart() {
        let later = start + hours(20)
        #expect(samplePolicy.extendedExpiry(of: session, requested: hours(30), targetConsent: longConsent, now: later) == start + hours(24))
    }

    @Test func extendIsCappedByConsent() {
        let consent = Consent(userID: employee.id, grantedAt: start - hours(1), expiresAt: start + minutes(90))
        #expect(samplePolicy.extendedExpiry(of: session, requested: hours(3), targetConsent: consent, now: start + minutes(50)) == start + minutes(90))
    }

    @Test func extendNeverShortens() {
        #expect(samplePolicy.extendedExpiry(of: session, requested: minutes(30), targetConsent: longConsent, now: start + minutes(10)) == start + hours(1))
        #expect(samplePolicy.extendedExpiry(of: session, requested: nil, targetConsent: longConsent, now: start + minutes(10)) == start + hours(1))
    }

    @Test func extendWithoutConsentEndsNow() {
        let later = start + minutes(10)
        #expect(samplePolicy.extendedExpiry(of: session, requested: hours(2), targetConsent: nil, now: later) == later)
    }
}

@Suite struct ModeTests {
    @Test(arguments: [
        (ImpersonationModeSetting.readWrite, nil, ImpersonationMode.readWrite),
        (.readWrite, "", .readWrite),
        (.readWrite, "read-write", .readWrite),
        (.readWrite, "read-only", .readOnly),
        (.readOnly, nil, .readOnly),
        (.readOnly, "read-write", .readOnly),
        (.readOnly, "read-only", .readOnly),
        (.choose, nil, .readOnly),
        (.choose, "", .readOnly),
        (.choose, "read-write", .readWrite),
        (.choose, "read-only", .readOnly),
    ] as [(ImpersonationModeSetting, String?, ImpersonationMode)])
    func resolution(setting: ImpersonationModeSetting, requested: String?, expected: ImpersonationMode) throws {
        let policy = ImpersonationPolicy(roles: sampleRoles, rules: ImpersonationRules(mode: setting))
        #expect(try policy.mode(requested: requested) == expected)
    }

    @Test(arguments: ImpersonationModeSetting.allCases)
    func unknownModeIsRefusedUnderEverySetting(setting: ImpersonationModeSetting) {
        let policy = ImpersonationPolicy(roles: sampleRoles, rules: ImpersonationRules(mode: setting))
        for requested in ["write", "READ-ONLY", "read_only", " read-only", "choose"] {
            #expect(throws: InvalidInput.mode, "\(requested)") { try policy.mode(requested: requested) }
        }
        #expect(InvalidInput.mode.code == "invalid_mode")
    }
}

@Suite struct ConsentHoursTests {
    @Test(arguments: [(0, false), (1, true), (24, true), (168, true), (169, false), (-1, false), (Int.min, false), (Int.max, false)])
    func bounds(hours: Int, valid: Bool) throws {
        if valid {
            #expect(try samplePolicy.consentHours(hours) == hours)
        } else {
            #expect(throws: InvalidInput.hours(maximum: 168)) { try samplePolicy.consentHours(hours) }
        }
    }

    @Test(arguments: [
        ("1", 1), ("168", 168), ("024", 24), ("0", nil), ("169", nil), ("-1", nil), ("+5", nil), (" 5", nil),
        ("5 ", nil), ("1.5", nil), ("", nil), ("abc", nil), ("99999999999999999999", nil), ("٣", nil),
    ] as [(String, Int?)])
    func parsing(text: String, expected: Int?) throws {
        if let expected {
            #expect(try samplePolicy.consentHours(parsing: text) == expected)
        } else {
            #expect(throws: InvalidInput.hours(maximum: 168)) { try samplePolicy.consentHours(parsing: text) }
        }
    }

    @Test func messageNamesTheBounds() {
        let error = InvalidInput.hours(maximum: 72)
        #expect(error.code == "invalid_hours")
        #expect(error.httpStatus == 400)
        #expect(error.sentence.contains("1 to 72"))
    }

    @Test func grantedConsentLastsTheGivenHours() throws {
        let consent = try samplePolicy.consent(for: employee.id, hours: 24, now: now)
        #expect(consent == Consent(userID: employee.id, grantedAt: now, expiresAt: now + hours(24)))
        #expect(throws: InvalidInput.hours(maximum: 168)) { try samplePolicy.consent(for: employee.id, hours: 0, now: now) }
    }
}
