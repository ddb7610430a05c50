import ActAsCore
import ActAsSessions
import Foundation
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
    let existing: [Int64: String] = [3: "c", 1: "a", 2: "b"]

    @Test func withoutAResumePointNothingIsReplayedAndEverythingKnownIsSkipped() {
        let plan = LiveResume(lastEventID: nil, after: nil).plan(existing: existing)
        #expect(plan.replay.isEmpty)
        #expect(plan.skip == [1, 2, 3])
    }

    @Test func lastEventIDReplaysNewerInOrder() {
        let plan = LiveResume(lastEventID: "1", after: "3").plan(existing: existing)
        #expect(plan.replay.map(\.seq) == [2, 3])
        #expect(plan.skip == [1])
    }

    @Test(arguments: ["x", "-1", "", " 12a"])
    func aMalformedResumePointIsIgnored(value: String) {
        #expect(LiveResume(lastEventID: value, after: nil).after == nil)
    }

    @Test func theQueryIsUsedWithoutTheHeader() {
        #expect(LiveResume(lastEventID: nil, after: "0").plan(existing: existing).replay.map(\.seq) == [1, 2, 3])
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
