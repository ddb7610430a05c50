import ActAsConfig
import ActAsStore
import Crypto
import Foundation
import Testing

@testable import ActAsNotify

@Suite struct NotifyTests {
    let session = OutboxNotification(
        seq: 3, id: "evt_1", type: "impersonation_started", createdAt: Date(timeIntervalSince1970: 1_796_000_000.123),
        orderKey: "imp_x", sessionID: "imp_x",
        actor: .init(id: "u1", username: "alex", name: "Alex Admin"), target: .init(id: "u2", username: "alice", name: "Alice"),
        reason: "ticket 42: cannot see invoices", mode: "read-only", expiresAt: Date(timeIntervalSince1970: 1_796_003_600))

    @Test func payloadHasTheSpecMembersAndNothingElse() throws {
        let body = NotificationPayload(session, origin: "https://app.example.com").json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(Set(object.keys) == ["id", "type", "ts", "session_id", "actor", "target", "reason", "mode", "expires_at", "url"])
        #expect(object["ts"] as? String == "2026-11-30T00:53:20.123Z")
        #expect(object["url"] as? String == "https://app.example.com/.actas/sessions/imp_x")
        #expect((object["actor"] as? [String: String]) == ["id": "u1", "username": "alex", "name": "Alex Admin"])
    }

    @Test func membersThatDoNotApplyAreAbsent() throws {
        let consent = OutboxNotification(id: "evt_2", type: "consent_revoked", createdAt: Date(), orderKey: "consent:u2",
                                         target: .init(id: "u2", username: "alice", name: "Alice"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(NotificationPayload(consent, origin: "https://h").json())) as? [String: Any])
        #expect(Set(object.keys) == ["id", "type", "ts", "target"])
    }

    @Test func signatureIsHMACOfTimestampDotBody() {
        let body = Array(#"{"id":"evt_1"}"#.utf8)
        let secret = Array("s3cret".utf8)
        var material = Array("1700000000.".utf8)
        material += body
        let expected = HMAC<SHA256>.authenticationCode(for: material, using: SymmetricKey(data: secret)).map { String(format: "%02x", $0) }.joined()
        #expect(WebhookSignature.header(secret: secret, timestamp: 1_700_000_000, body: body) == "sha256=" + expected)
        let headers = WebhookClient.headers(eventID: "evt_1", body: body, secret: secret, timestamp: 1_700_000_000)
        #expect(headers.contains { $0 == ("X-ActAs-Signature", "sha256=" + expected) })
        #expect(headers.contains { $0 == ("X-ActAs-Event-Id", "evt_1") })
        #expect(headers.contains { $0 == ("X-ActAs-Timestamp", "1700000000") })
        #expect(!WebhookClient.headers(eventID: "e", body: body, secret: nil, timestamp: 1).contains { $0.0 == "X-ActAs-Signature" })
    }

    @Test func backoffDoublesAndStopsAtRetryFor() {
        let schedule = RetrySchedule(retryFor: 60, cap: 600)
        #expect([1, 2, 3, 4].map { schedule.delay(afterAttempts: $0) } == [1, 2, 4, 8])
        #expect(RetrySchedule(retryFor: 86400, cap: 600).delay(afterAttempts: 20) == 600)
        let created = Date(timeIntervalSince1970: 1000)
        #expect(schedule.nextAttempt(createdAt: created, attempts: 1, now: created.addingTimeInterval(5)) == created.addingTimeInterval(6))
        // The last attempt lands on the deadline, not past it; after it, nothing.
        #expect(schedule.nextAttempt(createdAt: created, attempts: 10, now: created.addingTimeInterval(50)) == created.addingTimeInterval(60))
        #expect(schedule.nextAttempt(createdAt: created, attempts: 11, now: created.addingTimeInterval(60)) == nil)
    }

    @Test func slackBodyIsOneTextMemberWithTheLink() throws {
        let body = NotificationPayload(session, origin: "https://h").slackJSON()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: String])
        #expect(Array(object.keys) == ["text"])
        #expect(object["text"]!.hasPrefix("Alex Admin (alex) is acting as Alice (alice) — reason: ticket 42"))
        #expect(object["text"]!.contains("<https://h/.actas/sessions/imp_x|See what they do>"))
    }

    @Test func slackTextEscapesEveryInterpolatedValue() throws {
        let hostile = OutboxNotification(
            id: "evt_9", type: "impersonation_denied", createdAt: Date(), orderKey: "denied:u1",
            actor: .init(id: "u1", username: "a<b", name: "Eve <!channel>"),
            target: .init(id: nil, username: "<https://evil.example|click> & <@U123>", name: nil),
            reason: "see <https://evil.example|here>")
        let text = NotificationPayload(hostile, origin: "https://h").sentence
        #expect(text == "Eve &lt;!channel&gt; (a&lt;b) was refused acting as &lt;https://evil.example|click&gt; &amp; &lt;@U123&gt;"
            + " — reason: see &lt;https://evil.example|here&gt;")
    }
}
