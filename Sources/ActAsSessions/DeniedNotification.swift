import ActAsCore
import ActAsCrypto
import ActAsStore
import Foundation

extension Impersonations {
    /// Longest target and reason a denial's notification carries: both are what the actor
    /// typed (an unknown target included), and must not turn the outbox or a chat channel
    /// into a place to store or post arbitrary text.
    public static let deniedTargetLimit = 256
    public static let deniedReasonLimit = 1000

    /// A refused start changes no state, so its notification (SPEC §10.5) is the outbox row
    /// alone; every other event's row is written by the store with the change itself.
    func notifyDenied(actor: User, target: String, reason: String, now: Date) {
        let known = live.read { $0.user(username: target) }
        let notification = Self.deniedNotification(actor: actor, target: target, known: known, reason: reason, now: now)
        let store = self.store
        Task { try? await store.enqueueNotification(notification) }
    }

    /// The outbox row of a refused start, with the typed target and reason capped.
    public static func deniedNotification(actor: User, target: String, known: User?, reason: String, now: Date) -> OutboxNotification {
        OutboxNotification(
            id: Secrets.identifier(prefix: "evt_"), type: "impersonation_denied", createdAt: now,
            orderKey: "denied:\(actor.id)",
            actor: .init(id: actor.id, username: actor.username, name: actor.name),
            target: .init(id: known?.id, username: known?.username ?? capped(target, deniedTargetLimit), name: known?.name),
            reason: reason.isEmpty ? nil : capped(reason, deniedReasonLimit))
    }

    static func capped(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }
}
