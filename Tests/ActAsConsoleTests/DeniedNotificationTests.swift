import ActAsCore
import ActAsSessions
import Foundation
import Testing

/// SPEC §10.5: a refused start's notification carries what the actor typed, capped.
@Suite("Denied notification")
struct DeniedNotificationTests {
    let actor = User(id: "usr_a", username: "ann", role: "hr_admin", orgUnit: "acme", lastLogin: nil)

    @Test func typedTargetAndReasonAreCapped() throws {
        let row = Impersonations.deniedNotification(
            actor: actor, target: String(repeating: "t", count: 5000), known: nil,
            reason: String(repeating: "r", count: 50_000), now: Date())
        let target = try #require(row.target)
        #expect(target.username.count == Impersonations.deniedTargetLimit && target.username.hasSuffix("…"))
        #expect(row.reason?.count == Impersonations.deniedReasonLimit)
        #expect(row.type == "impersonation_denied" && row.actor?.username == "ann")
    }

    @Test func shortValuesAndKnownTargetsAreKept() throws {
        let known = User(id: "usr_t", username: "tom", role: "employee", orgUnit: "acme/x", lastLogin: nil)
        let row = Impersonations.deniedNotification(actor: actor, target: "tom", known: known, reason: "ticket 12345", now: Date())
        #expect(row.target?.id == "usr_t" && row.target?.username == "tom")
        #expect(row.reason == "ticket 12345")
        #expect(Impersonations.deniedNotification(actor: actor, target: "x", known: nil, reason: "", now: Date()).reason == nil)
    }
}
