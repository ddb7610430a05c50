import ActAsCore
import ActAsPages
import ActAsSessions
import ActAsStore
import Foundation

/// `GET /.actas/sessions/{id}/live` (SPEC §10.5): the session's request records as the log
/// writes them, as Server-Sent Events. Each instance numbers its own log, so `id:` is not a
/// seq but how far the stream got in every instance's log (`LiveResume.mark`), and a browser's
/// `Last-Event-ID` (or the page's `?after=`) resumes exactly there, on any instance.
extension Console {
    static let liveScriptPath = "/.actas/session-live.js"
    /// How long a browser waits before reconnecting after the stream is cut.
    static let liveRetryMilliseconds = 2000

    func sessionLive(_ request: ConsoleRequest, _ principal: LiveState.Principal, id: String) async throws -> ConsoleResponse {
        guard let session = try await directory.store.impersonation(id: id), mayRead(session, principal.user) else {
            return problem(request, status: 404, code: "not_found", message: "There is no session \(id) you may see.")
        }
        guard request.method != "HEAD" else {
            let (empty, done) = AsyncStream.makeStream(of: [UInt8].self)
            done.finish()
            return .eventStream(empty)
        }
        let resume = LiveResume(lastEventID: request.header("last-event-id"), after: request.queryValue("after"))
        // Subscribed before the store is read: a record lands in the read, in the feed, or both
        // (then it is sent once), never in neither.
        let subscription = session.isOpen ? liveFeed.watch(sessionID: id) : nil
        var existing: [LiveRecordKey: String] = [:]
        for line in try await directory.store.sessionAudit(sessionID: id) where SessionLiveFeed.isRequestRecord(line.line) {
            existing[LiveRecordKey(instance: line.instance, seq: line.seq)] = line.line
        }
        for record in subscription?.known ?? [] where SessionLiveFeed.isRequestRecord(record.line) { existing[record.key] = record.line }
        let plan = resume.plan(existing: existing)
        let endedReason = session.endReason
        let (out, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        let pump = Task {
            continuation.yield(Array(ServerSentEvent.retry(milliseconds: Self.liveRetryMilliseconds).utf8))
            var sent = plan.skip
            var marks = plan.marks
            for record in plan.replay {
                sent.insert(record.key)
                continuation.yield(Self.frame(record, marks: &marks))
            }
            guard let subscription else {
                continuation.yield(Self.endFrame(sessionID: id, reason: endedReason))
                continuation.finish()
                return
            }
            for await item in subscription.items {
                // SPEC §10.1: a sign-out, a suspension or a lost role takes effect on an open
                // stream too — checked against the live state before each piece is sent.
                guard self.mayStillWatch(session, principal, now: Date()) else { break }
                switch item {
                case .record(let record):
                    guard sent.insert(record.key).inserted else { continue }
                    continuation.yield(Self.frame(record, marks: &marks))
                case .heartbeat:
                    continuation.yield(Array(ServerSentEvent.comment("keep-alive").utf8))
                case .ended(let reason):
                    continuation.yield(Self.endFrame(sessionID: id, reason: reason))
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in pump.cancel() }
        return .eventStream(out)
    }

    /// The viewer's sign-in session (or API token) is still alive, its user may still sign in,
    /// and still may read the session (target, actor, or an auditor's role).
    func mayStillWatch(_ session: ImpersonationSession, _ principal: LiveState.Principal, now: Date) -> Bool {
        let current = live.read { tables -> User? in
            if let signIn = principal.session {
                guard let alive = tables.sessions[signIn.idHash], alive.expiresAt > now else { return nil }
            } else if let token = principal.token {
                guard tables.tokens[token.tokenHash]?.revokedAt == nil, tables.tokens[token.tokenHash] != nil else { return nil }
            }
            guard let user = tables.users[principal.user.id], user.status.maySignIn else { return nil }
            return user
        }
        guard let current else { return false }
        return mayRead(session, current)
    }

    /// The session page's live rows: every value goes in as text (`textContent`), never as
    /// markup — records carry attacker-chosen paths, queries and bodies.
    static let liveScript = #"""
        (function () {
          "use strict";
          var status = document.getElementById("live-status");
          if (!status || !window.EventSource) return;
          var table = document.querySelector("table.log");
          var body = table && table.tBodies[0];
          if (!body) return;
          function cell(row, text, code) {
            var td = row.insertCell(-1);
            if (text === "") return td;
            var inner = document.createElement(code ? "code" : "span");
            inner.textContent = text;
            td.appendChild(inner);
            return td;
          }
          function compact(value) {
            if (value === undefined || value === null) return "";
            var text = JSON.stringify(value);
            return text === "{}" || text === "[]" ? "" : text;
          }
          var source = new EventSource(status.getAttribute("data-live-src"));
          source.onopen = function () { document.documentElement.dataset.live = "open"; };
          source.onmessage = function (event) {
            var record;
            try { record = JSON.parse(event.data); } catch (e) { return; }
            var row = body.insertRow(-1);
            var when = row.insertCell(-1), time = document.createElement("time");
            time.dateTime = String(record.ts || "");
            time.textContent = String(record.ts || "");
            when.appendChild(time);
            cell(row, String(record.method || "") + " " + String(record.path || ""), true);
            cell(row, record.status === undefined ? "" : String(record.status), false);
            cell(row, compact(record.query), true);
            cell(row, compact(record.request_body), true);
            table.hidden = false;
            var none = document.getElementById("no-rows");
            if (none) none.hidden = true;
          };
          source.addEventListener("end", function () {
            source.close();
            document.documentElement.dataset.live = "ended";
            status.textContent = "This session has ended. Reload the page for the final record.";
          });
        })();
        """#

    static func frame(_ record: LiveRecord, marks: inout [String: Int64]) -> [UInt8] {
        marks[record.key.instance] = max(marks[record.key.instance] ?? -1, record.key.seq)
        return Array(ServerSentEvent.frame(id: LiveResume.mark(marks), data: record.line).utf8)
    }

    static func endFrame(sessionID: String, reason: EndReason?) -> [UInt8] {
        Array(ServerSentEvent.frame(event: "end", data: ConsoleJSON.text(LiveEnd(sessionID: sessionID, endReason: reason?.rawValue))).utf8)
    }
}

/// The `end` event's data.
struct LiveEnd: Codable, Equatable {
    var sessionID: String
    var endReason: String?

    enum CodingKeys: String, CodingKey {
        case sessionID = "session_id"
        case endReason = "end_reason"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(sessionID, forKey: .sessionID)
        try container.encode(endReason, forKey: .endReason)  // null, not absent, when unknown
    }
}
