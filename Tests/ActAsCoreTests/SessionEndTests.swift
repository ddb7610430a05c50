import Foundation
import Testing
@testable import ActAsCore

/// An open session started 30 minutes ago for an hour, by `hrAdmin` as `employee`.
struct EndScenario {
    var session = ImpersonationSession(
        id: "imp_1", actorID: hrAdmin.id, targetID: employee.id, reason: "Ticket 4521", mode: .readWrite,
        startedAt: now - minutes(30), expiresAt: now + minutes(30)
    )
    var actor: User? = hrAdmin
    var target: User? = employee
    var consent: Consent? = activeConsent
    var policy = samplePolicy

    func endReason() -> EndReason? {
        policy.endReason(for: session, actor: actor, target: target, targetConsent: consent, now: now)
    }
}

struct EndCase: Sendable, CustomTestStringConvertible {
    let expected: EndReason?
    let label: String
    let apply: @Sendable (inout EndScenario) -> Void

    init(_ expected: EndReason?, _ label: String, _ apply: @escaping @Sendable (inout EndScenario) -> Void) {
        self.expected = expected
        self.label = label
        self.apply = apply
    }

    var testDescription: String { "\(expected?.rawValue ?? "valid"): \(label)" }
}

@Suite struct SessionEndTests {
    @Test(arguments: [
        EndCase(nil, "nothing changed") { _ in },
        EndCase(nil, "target invited") { $0.target?.status = .invited },
        EndCase(nil, "consent off and absent") { scenario in
            scenario.policy.rules.consentRequired = false
            scenario.consent = nil
        },
        EndCase(nil, "session ends in one second") { $0.session.expiresAt = now + 1 },
        EndCase(.targetDeleted, "target gone") { $0.target = nil },
        EndCase(.targetDeleted, "target deleted") { $0.target?.status = .deleted },
        EndCase(.targetSuspended, "target suspended") { $0.target?.status = .suspended },
        EndCase(.targetDeleted, "someone else's record as target") { $0.target?.id = "usr_other" },
        EndCase(.actorLostPermission, "someone else's record as actor") { $0.actor?.id = "usr_other" },
        EndCase(.actorLostPermission, "actor gone") { $0.actor = nil },
        EndCase(.actorLostPermission, "actor suspended") { $0.actor?.status = .suspended },
        EndCase(.actorLostPermission, "actor deleted") { $0.actor?.status = .deleted },
        EndCase(.actorLostPermission, "actor demoted") { $0.actor?.role = "manager" },
        EndCase(.actorLostPermission, "target promoted to actor's rank") { $0.target?.role = "hr_admin" },
        EndCase(.actorLostPermission, "target moved out of scope") { $0.target?.orgUnit = "acme/apac" },
        EndCase(.actorLostPermission, "actor moved") { $0.actor?.orgUnit = "acme/apac" },
        EndCase(.consentRevoked, "consent revoked") { $0.consent?.revokedAt = now - minutes(1) },
        EndCase(.consentRevoked, "consent record gone") { $0.consent = nil },
        EndCase(.consentRevoked, "someone else's consent") { $0.consent?.userID = "usr_other" },
        EndCase(.consentRevoked, "revoked by a clock slightly ahead") { $0.consent?.revokedAt = now + 1 },
        EndCase(.consentExpired, "consent expired") { $0.consent?.expiresAt = now - minutes(1) },
        EndCase(.consentExpired, "consent ends right now") { $0.consent?.expiresAt = now },
        EndCase(.expired, "session time over") { $0.session.expiresAt = now - minutes(1) },
        EndCase(.expired, "session ends right now") { $0.session.expiresAt = now },
    ])
    func eachReason(_ endCase: EndCase) {
        var scenario = EndScenario()
        endCase.apply(&scenario)
        #expect(scenario.endReason() == endCase.expected)
    }

    @Test(arguments: [
        EndCase(.targetDeleted, "deleted beats everything") { scenario in
            scenario.target?.status = .deleted
            scenario.actor = nil
            scenario.consent = nil
            scenario.session.expiresAt = now - hours(1)
        },
        EndCase(.targetSuspended, "suspended beats actor and time") { scenario in
            scenario.target?.status = .suspended
            scenario.actor?.role = "employee"
            scenario.session.expiresAt = now - hours(1)
        },
        EndCase(.actorLostPermission, "actor beats consent and time") { scenario in
            scenario.actor?.role = "manager"
            scenario.consent?.revokedAt = now - hours(1)
            scenario.session.expiresAt = now - hours(1)
        },
        EndCase(.consentRevoked, "revoked before the session's end") { scenario in
            scenario.consent?.revokedAt = now - minutes(20)
            scenario.session.expiresAt = now - minutes(10)
        },
        EndCase(.expired, "session ended before the revocation") { scenario in
            scenario.session.expiresAt = now - minutes(20)
            scenario.consent?.revokedAt = now - minutes(10)
        },
        EndCase(.consentExpired, "consent expired before the session's end") { scenario in
            scenario.consent?.expiresAt = now - minutes(20)
            scenario.session.expiresAt = now - minutes(10)
        },
        EndCase(.expired, "session ended before the consent") { scenario in
            scenario.session.expiresAt = now - minutes(20)
            scenario.consent?.expiresAt = now - minutes(10)
        },
        EndCase(.consentExpired, "session capped at consent expiry: tie") { scenario in
            scenario.session.expiresAt = now - minutes(5)
            scenario.consent?.expiresAt = now - minutes(5)
        },
        EndCase(.consentRevoked, "revoked exactly as consent expired") { scenario in
            scenario.consent?.revokedAt = now - minutes(5)
            scenario.consent?.expiresAt = now - minutes(5)
        },
        EndCase(.consentExpired, "revoked after it had expired") { scenario in
            scenario.consent?.expiresAt = now - minutes(20)
            scenario.consent?.revokedAt = now - minutes(10)
        },
    ])
    func precedence(_ endCase: EndCase) {
        var scenario = EndScenario()
        endCase.apply(&scenario)
        #expect(scenario.endReason() == endCase.expected)
    }

    /// Ends are shown in whole seconds (`expires_at`), so they are enforced in whole seconds:
    /// a consent ending at :00.7 has ended at :00.2, as shown (issue 14 item 4).
    @Test func consentEndsAtTheWholeSecondItShows() {
        var scenario = EndScenario()
        scenario.consent?.expiresAt = now + 0.7
        #expect(scenario.endReason() == .consentExpired)
        #expect(scenario.consent?.isActive(at: now) == false)
        #expect(scenario.consent?.isActive(at: now - 0.3) == true)
        scenario.consent?.expiresAt = now + 1.2
        #expect(scenario.endReason() == nil)
    }

    @Test func aSessionCappedAtAFractionalConsentEndsForTheConsent() {
        // The session's end is the consent's, rounded down as it was when it started.
        var scenario = EndScenario()
        scenario.consent?.expiresAt = now - 4.6
        scenario.session.expiresAt = (now - 4.6).wholeSecondsDown
        #expect(scenario.endReason() == .consentExpired)
    }

    @Test func wholeSecondsDown() {
        #expect(Date(timeIntervalSince1970: 1_800_000_000.999).wholeSecondsDown == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(Date(timeIntervalSince1970: 1_800_000_000).wholeSecondsDown == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(Date(timeIntervalSince1970: -0.5).wholeSecondsDown == Date(timeIntervalSince1970: -1))
    }

    @Test func closedSessionReportsItsRecordedReason() {
        var scenario = EndScenario()
        scenario.session.endedAt = now - minutes(1)
        scenario.session.endReason = .exit
        #expect(scenario.endReason() == .exit)
        scenario.session.endReason = nil
        #expect(scenario.endReason() == .endedByOperator)
    }
}
