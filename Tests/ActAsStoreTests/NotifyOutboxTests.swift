import ActAsCore
import ActAsCrypto
import Foundation
import Testing
@testable import ActAsStore

/// The notification outbox (SPEC §10.5) on both stores: rows written with the state change
/// that caused them, delivered in order per session, claimed by one owner at a time.
@Suite struct NotifyOutboxTests {
    func drain(_ store: any Store, owner: String = "a", now: Date) async throws -> [OutboxNotification] {
        var found: [OutboxNotification] = []
        while let n = try await store.claimNotification(owner: owner, now: now, lease: 60) {
            found.append(n)
            try await store.finishNotification(seq: n.seq, owner: owner, outcome: .delivered, now: now)
        }
        return found
    }

    @Test(arguments: StoreKind.all) func stateChangesWriteTheirNotifications(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let admin = makeUser("admin", role: "super_admin"), emp = makeUser("emp")
            try await store.saveUsers([admin, emp])
            try await store.saveConsent(Consent(userID: emp.id, grantedAt: t0, expiresAt: t0 + 86400))
            var session = makeImpersonation(actor: admin.id, target: emp.id)
            #expect(try await store.startImpersonation(session))
            session.expiresAt = t0 + 7200
            try await store.updateImpersonation(session)
            _ = try await store.endImpersonation(id: session.id, at: t0 + 60, reason: .consentRevoked, notice: true)
            // Ending twice is one event.
            _ = try await store.endImpersonation(id: session.id, at: t0 + 61, reason: .exit, notice: false)
            try await store.saveConsent(Consent(userID: emp.id, grantedAt: t0, expiresAt: t0 + 86400, revokedAt: t0 + 60))

            let sent = try await drain(store, now: t0 + 100)
            #expect(sent.map(\.type) == ["consent_granted", "impersonation_started", "impersonation_extended", "impersonation_ended", "consent_revoked"])
            let started = sent[1]
            #expect(started.id.hasPrefix("evt_") && Set(sent.map(\.id)).count == 5)
            #expect(started.sessionID == session.id && started.orderKey == session.id)
            #expect(started.actor == .init(id: admin.id, username: "admin", name: "Admin"))
            #expect(started.target == .init(id: emp.id, username: "emp", name: "Emp"))
            #expect(started.reason == "ticket 4711: broken invoice" && started.mode == "read-only")
            #expect(started.expiresAt == t0 + 3600 && started.createdAt == t0 && started.endReason == nil)
            #expect(sent[2].expiresAt == t0 + 7200)
            #expect(sent[3].endReason == "consent_revoked" && sent[3].expiresAt == nil && sent[3].createdAt == t0 + 60)
            #expect(sent[4].target?.username == "emp" && sent[4].actor == nil && sent[4].orderKey == "consent:\(emp.id)")
            #expect(try await store.notificationStats() == OutboxStats(pending: 0, oldestPending: nil))
        }
    }

    @Test(arguments: StoreKind.all) func aSessionsNotificationsGoInOrderAndOneClaimAtATime(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let admin = makeUser("admin", role: "super_admin"), emp = makeUser("emp"), other = makeUser("other", role: "super_admin")
            try await store.saveUsers([admin, emp, other])
            let first = makeImpersonation(actor: admin.id, target: emp.id)
            _ = try await store.startImpersonation(first)
            _ = try await store.endImpersonation(id: first.id, at: t0 + 5, reason: .exit, notice: false)
            let second = makeImpersonation(actor: other.id, target: emp.id)
            _ = try await store.startImpersonation(second)
            let now = t0 + 100
            // a holds the first session's start: b may not take its end, only the other session.
            let a = try #require(try await store.claimNotification(owner: "a", now: now, lease: 60))
            #expect(a.sessionID == first.id && a.type == "impersonation_started" && a.attempts == 1)
            let b = try #require(try await store.claimNotification(owner: "b", now: now, lease: 60))
            #expect(b.sessionID == second.id)
            #expect(try await store.claimNotification(owner: "b", now: now, lease: 60) == nil)
            #expect(try await store.notificationStats().pending == 3)
            // A failed attempt waits for its retry, and keeps the session's later event waiting.
            try await store.finishNotification(seq: a.seq, owner: "a", outcome: .retry(at: now + 30), now: now)
            #expect(try await store.claimNotification(owner: "b", now: now, lease: 60) == nil)
            let again = try #require(try await store.claimNotification(owner: "b", now: now + 31, lease: 60))
            #expect(again.id == a.id && again.attempts == 2)
            // An old owner's finish after losing the claim changes nothing.
            try await store.finishNotification(seq: a.seq, owner: "a", outcome: .delivered, now: now + 31)
            #expect(try await store.claimNotification(owner: "c", now: now + 31, lease: 60) == nil)
            try await store.finishNotification(seq: again.seq, owner: "b", outcome: .delivered, now: now + 31)
            let ended = try #require(try await store.claimNotification(owner: "c", now: now + 31, lease: 60))
            #expect(ended.type == "impersonation_ended" && ended.sessionID == first.id)
            // A released claim (restart after kill -9) is taken again at once.
            try await store.releaseNotifications(owner: "c")
            #expect(try await store.claimNotification(owner: "c", now: now + 31, lease: 60)?.id == ended.id)
        }
    }

    @Test(arguments: StoreKind.all) func anExpiredLeaseIsTakenOverAndGivingUpFinishes(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let now = Date()
            let denied = OutboxNotification(id: Secrets.identifier(prefix: "evt_"), type: "impersonation_denied", createdAt: now,
                                            orderKey: "denied", actor: .init(id: "u1", username: "admin", name: "Admin"),
                                            target: .init(id: nil, username: "ghost", name: nil), reason: "ticket 1")
            try await store.enqueueNotification(denied)
            let stats = try await store.notificationStats()
            #expect(stats.pending == 1 && abs(stats.oldestPending!.timeIntervalSince(now)) < 0.01)
            let first = try #require(try await store.claimNotification(owner: "dead", now: now, lease: 10))
            #expect(first.target == .init(id: nil, username: "ghost", name: nil) && first.reason == "ticket 1")
            #expect(try await store.claimNotification(owner: "live", now: now + 5, lease: 10) == nil)
            let taken = try #require(try await store.claimNotification(owner: "live", now: now + 11, lease: 10))
            #expect(taken.id == denied.id)
            try await store.finishNotification(seq: taken.seq, owner: "live", outcome: .gaveUp, now: now + 11)
            #expect(try await store.notificationStats().pending == 0)
            try await store.pruneNotifications(doneBefore: now + 12)
            #expect(try await store.claimNotification(owner: "live", now: now + 100, lease: 10) == nil)
        }
    }
}
