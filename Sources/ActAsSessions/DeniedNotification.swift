import ActAsCore
import ActAsCrypto
import ActAsStore
import Foundation

extension Impersonations {
    /// A refused start changes no state, so its notification (SPEC §10.5) is the outbox row
    /// alone; every other event's row is written by the store with the change itself.
    func notifyDenied(actor: User, target: String, reason: String, now: Date) {
        let known = live.read { $0.user(username: target) }
        let notification = OutboxNotification(
            id: Secrets.identifier(prefix: "evt_"), type: "impersonation_denied", createdAt: now,
            orderKey: "denied:\(actor.id)",
            actor: .init(id: actor.id, username: actor.username, name: actor.name),
            target: .init(id: known?.id, username: known?.username ?? target, name: known?.name),
            reason: reason.isEmpty ? nil : reason)
        let store = self.store
        Task { try? await store.enqueueNotification(notification) }
    }
}
