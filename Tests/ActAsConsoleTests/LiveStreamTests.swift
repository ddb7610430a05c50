import ActAsCore
import ActAsSessions
import ActAsStore
import Foundation
import ActAsPages
import Testing
@testable import ActAsConsole

@Suite("Server-Sent Events framing")
struct ServerSentEventTests {
    @Test func oneLineIsOneDataField() {
        #expect(ServerSentEvent.frame(id: "7", data: #"{"a":1}"#) == "id: 7\ndata: {\"a\":1}\n\n")
    }

    @Test(arguments: [("a\nb", ["a", "b"]), ("a\r\nb", ["a", "b"]), ("a\rb", ["a", "b"]), ("a\n\nb", ["a", "", "b"]), ("a\n", ["a", ""])])
    func everyLineBreakStartsANewDataField(data: String, lines: [String]) {
        let framed = ServerSentEvent.frame(data: data)
        #expect(framed == lines.map { "data: \($0)\n" }.joined() + "\n")
        // No blank line inside: the event cannot be ended early by its data.
        #expect(!framed.dropLast(2).contains("\n\n"))
    }

    @Test func idAndEventWithALineBreakAreDropped() {
        #expect(ServerSentEvent.frame(id: "1\ndata: forged", event: "end\r", data: "x") == "data: x\n\n")
    }

    @Test func namedEventAndComment() {
        #expect(ServerSentEvent.frame(event: "end", data: "{}") == "event: end\ndata: {}\n\n")
        #expect(ServerSentEvent.comment("keep-alive") == ": keep-alive\n\n")
        #expect(ServerSentEvent.retry(milliseconds: 2000) == "retry: 2000\n\n")
    }
}

@Suite("Live stream resume")
struct LiveResumeTests {
    static func key(_ instance: String, _ seq: Int64) -> LiveRecordKey { LiveRecordKey(instance: instance, seq: seq) }
    // Two instances serving one session: both have a seq 1 and 2.
    let existing: [LiveRecordKey: String] = [key("a", 3): "a3", key("a", 1): "a1", key("b", 1): "b1", key("a", 2): "a2", key("b", 2): "b2"]

    @Test func withoutAResumePointNothingIsReplayedAndEverythingKnownIsSkipped() {
        let plan = LiveResume(lastEventID: nil, after: nil).plan(existing: existing)
        #expect(plan.replay.isEmpty)
        #expect(plan.skip == Set(existing.keys))
        #expect(plan.marks == ["a": 3, "b": 2])
    }

    @Test func aMarkReplaysWhatEachInstanceLacksInLogOrder() {
        let plan = LiveResume(lastEventID: "a:1,b:1", after: "a:3,b:2").plan(existing: existing)
        #expect(plan.replay.map(\.line) == ["a2", "a3", "b2"])
        #expect(plan.skip == [Self.key("a", 1), Self.key("b", 1)])
    }

    @Test func anInstanceTheMarkDoesNotNameIsReplayedWhole() {
        #expect(LiveResume(lastEventID: "a:2", after: nil).plan(existing: existing).replay.map(\.line) == ["a3", "b1", "b2"])
    }

    // Gaps are worse than duplicates: an id that is not a mark replays everything.
    @Test(arguments: ["x", "-1", "7", " 12a", "a:-1", "a:1,", "a:x"])
    func aMalformedOrSeqOnlyIdReplaysEverything(value: String) {
        #expect(LiveResume(lastEventID: value, after: nil).plan(existing: existing).replay.count == existing.count)
    }

    @Test func anEmptyHeaderMeansFromNow() {
        #expect(LiveResume(lastEventID: " ", after: nil).marks == nil)
    }

    @Test func theQueryIsUsedWithoutTheHeaderAndAnEmptyOneReplaysEverything() {
        #expect(LiveResume(lastEventID: nil, after: "a:2").plan(existing: existing).replay.map(\.line) == ["a3", "b1", "b2"])
        #expect(LiveResume(lastEventID: nil, after: "").plan(existing: existing).replay.count == existing.count)
    }

    @Test(arguments: ["node-a", "host:8443", "a,b", "ü%x", ""])
    func aMarkRoundTripsAnyInstanceName(instance: String) {
        let marks = [instance: Int64(41), "z": 0]
        #expect(LiveResume.parse(LiveResume.mark(marks)) == marks)
    }

    @Test func theMarkOfRecordsIsTheHighestSeqPerInstance() {
        let lines = [("b", 4), ("a", 9), ("b", 5), ("a", 2)].map { instance, seq in
            SessionAuditLine(sessionID: "s", instance: instance, seq: Int64(seq), timestamp: Date(), line: "{}")
        }
        #expect(LiveResume.mark(of: lines) == "a:9,b:5")
    }

    @Test func eachFrameCarriesTheMarkSoFar() {
        var marks = ["a": Int64(3)]
        let frame = Console.frame(LiveRecord(key: Self.key("b", 1), line: "{}"), marks: &marks)
        #expect(String(decoding: frame, as: UTF8.self) == "id: a:3,b:1\ndata: {}\n\n")
    }
}

@Suite("Live stream records")
struct LiveRecordTests {
    @Test(arguments: [(#"{"ts":"x","seq":1,"type":"request","path":"/"}"#, true), (#"{"seq":2,"type":"request_denied"}"#, true),
                      (#"{"seq":3,"type":"impersonation_ended"}"#, false), ("not json", false)])
    func onlyRequestRecordsAreStreamed(line: String, streamed: Bool) {
        #expect(SessionLiveFeed.isRequestRecord(line) == streamed)
    }

    @Test func theEndEventCarriesTheSessionAndWhy() {
        #expect(ConsoleJSON.text(LiveEnd(sessionID: "imp_1", endReason: EndReason.exit.rawValue)) == #"{"end_reason":"exit","session_id":"imp_1"}"#)
        #expect(ConsoleJSON.text(LiveEnd(sessionID: "imp_1", endReason: nil)) == #"{"end_reason":null,"session_id":"imp_1"}"#)
    }
}

@Suite("Console JSON shapes")
struct ConsoleJSONShapeTests {
    private func object(_ response: ConsoleResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    @Test func anErrorIsCodeAndMessage() throws {
        let response = ConsoleResponse.json(404, ErrorJSON(error: "not_found", message: "There is no session x you may see."))
        #expect(response.header("content-type") == "application/json")
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":"not_found","message":"There is no session x you may see."}"# + "\n")
    }

    @Test func meCarriesNullsWhereSPECSaysNull() throws {
        let me = MeJSON(user: UserJSON(id: "u1", username: "emp", email: "e@x", name: "Emma", role: "employee", groups: ["sales"], orgUnit: "acme"),
                        impersonation: nil, consent: ConsentJSON(active: false, expiresAt: nil), csrfToken: nil)
        let json = try object(.json(200, me))
        #expect(json["impersonation"] is NSNull)
        #expect(json["csrf_token"] is NSNull)
        #expect((json["consent"] as? [String: Any])?["expires_at"] is NSNull)
        #expect(Set(((json["user"] as? [String: Any]) ?? [:]).keys) == ["id", "username", "email", "name", "role", "groups", "org_unit"])
    }

    @Test func anOpenSessionAndAnImpersonableRowCarryNulls() throws {
        let session = SessionJSON(id: "imp_1", actor: PersonJSON(id: "a", username: "admin", name: "Ada"), target: PersonJSON(id: "u", username: "emp", name: "Emma"),
                                  reason: "r", mode: "read-write", startedAt: "s", expiresAt: "e", endedAt: nil, endReason: nil)
        let json = try object(.json(200, session))
        #expect(json["ended_at"] is NSNull && json["end_reason"] is NSNull)
        let row = UserRowJSON(id: "u", username: "emp", name: "Emma", email: "e@x", role: "employee", groups: [], orgUnit: "",
                              status: "active", impersonable: true, reason: nil)
        #expect(try object(.json(200, row))["reason"] is NSNull)
        #expect(try object(.json(200, UserRowJSON(id: "u", username: "emp", name: "Emma", email: "e@x", role: "employee", groups: [], orgUnit: "",
                                                  status: "active", impersonable: false, reason: "no_consent")))["reason"] as? String == "no_consent")
    }

    @Test func impersonationHasEndMembersOnlyWhenEnded() throws {
        var value = ImpersonationJSON(id: "imp_1", target: PersonJSON(id: "u1", username: "emp", name: "Emma"), mode: "read-only",
                                      startedAt: "2026-12-07T10:00:00Z", expiresAt: "2026-12-07T11:00:00Z")
        #expect(Set(try object(.json(201, value)).keys) == ["id", "target", "mode", "started_at", "expires_at"])
        value.endedAt = "2026-12-07T10:30:00Z"
        value.endReason = "exit"
        #expect(Set(try object(.json(200, value)).keys) == ["id", "target", "mode", "started_at", "expires_at", "ended_at", "end_reason"])
    }

    @Test func aSessionsEventsAreTheLogLinesAsObjects() throws {
        let session = SessionJSON(id: "imp_1", actor: PersonJSON(id: "a", username: "admin", name: "Ada"), target: PersonJSON(id: "u", username: "emp", name: "Emma"),
                                  reason: "r", mode: "read-write", startedAt: "s", expiresAt: "e", endedAt: nil, endReason: nil)
        let line = #"{"ts":"2026-12-07T10:00:00.000Z","seq":7,"type":"request","duration_ms":3.25,"query":{"token":"[REDACTED]"},"user":"emp"}"#
        let json = try object(.json(200, SessionEventsJSON(session: session, events: [line, "not json"])))
        let events = try #require(json["events"] as? [[String: Any]])
        #expect(events.count == 1)
        #expect(events[0]["seq"] as? Int == 7 && events[0]["duration_ms"] as? Double == 3.25)
        #expect((events[0]["query"] as? [String: String]) == ["token": "[REDACTED]"])
        #expect((json["session"] as? [String: Any])?["end_reason"] is NSNull)
    }

    @Test func aUserRowSaysWhyNot() throws {
        let row = UserRowJSON(id: "u", username: "emp", name: "", email: "", role: "employee", groups: [], orgUnit: "", status: "active",
                              impersonable: true, reason: nil)
        #expect(try object(.json(200, UsersJSON(users: [row])))["users"].flatMap { ($0 as? [[String: Any]])?.first?["reason"] } is NSNull)
    }
}
