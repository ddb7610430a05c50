import ActAsCore
import ActAsPages
import ActAsStore
import Foundation

/// Who acted as whom, and every request they made: for the target, the administrator who ran
/// the session, and auditors (SPEC §4, §8). Anyone else gets 404, as if it did not exist.
extension Console {
    func mayRead(_ session: ImpersonationSession, _ user: User) -> Bool {
        session.targetID == user.id || session.actorID == user.id || impersonations.policy.roles.isAuditor(user.role)
    }

    func visibleSessions(_ user: User) async throws -> [ImpersonationSession] {
        if impersonations.policy.roles.isAuditor(user.role) {
            return try await directory.store.impersonations(activeOnly: false)
        }
        let asTarget = try await directory.store.impersonations(actorID: nil, targetID: user.id, limit: 500)
        let asActor = try await directory.store.impersonations(actorID: user.id, targetID: nil, limit: 500)
        return (asTarget + asActor).sorted { $0.startedAt > $1.startedAt }
    }

    func sessionObject(_ session: ImpersonationSession) -> SessionJSON {
        let (actor, target) = live.read { ($0.users[session.actorID], $0.users[session.targetID]) }
        func person(_ id: String, _ user: User?) -> PersonJSON {
            PersonJSON(id: id, username: user?.username ?? "", name: user?.name ?? "")
        }
        return SessionJSON(
            id: session.id, actor: person(session.actorID, actor), target: person(session.targetID, target),
            reason: session.reason, mode: session.mode.rawValue,
            startedAt: Self.timestamp(session.startedAt), expiresAt: Self.timestamp(session.expiresAt),
            endedAt: session.endedAt.map(Self.timestamp), endReason: session.endReason?.rawValue)
    }

    func sessionsAPI(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        let sessions = try await visibleSessions(principal.user)
        return .json(200, SessionsJSON(sessions: sessions.map(sessionObject)))
    }

    func sessionEventsAPI(_ request: ConsoleRequest, _ principal: LiveState.Principal, id: String) async throws -> ConsoleResponse {
        guard let session = try await directory.store.impersonation(id: id), mayRead(session, principal.user) else {
            return .json(404, ErrorJSON(error: "not_found", message: "There is no session \(id) you may see."))
        }
        let lines = try await directory.store.sessionAudit(sessionID: id).map(\.line)
        return .json(200, SessionEventsJSON(session: sessionObject(session), events: lines))
    }

    func sessionsPage(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        let sessions = try await visibleSessions(principal.user)
        let names = live.read { tables in
            Dictionary(sessions.flatMap { [$0.actorID, $0.targetID] }.map { ($0, tables.users[$0]?.displayName ?? $0) }, uniquingKeysWith: { a, _ in a })
        }
        let context: [String: Any] = [
            "auditor": impersonations.policy.roles.isAuditor(principal.user.role),
            "hasSessions": !sessions.isEmpty,
            "sessions": sessions.map { session -> [String: Any] in
                [
                    "id": session.id, "actor": names[session.actorID] ?? "", "target": names[session.targetID] ?? "",
                    "reason": session.reason, "mode": session.mode.rawValue, "started": Self.timestamp(session.startedAt),
                    "ended": session.endedAt.map(Self.timestamp) ?? "", "open": session.isOpen, "endReason": session.endReason?.rawValue ?? "",
                    "duration": Self.describe(interval: (session.endedAt ?? request.now).timeIntervalSince(session.startedAt)),
                ]
            },
        ]
        return .html(200, Templates.page(title: "Sessions", "sessions", context, signedIn: signedInContext(principal)))
    }

    func sessionPage(_ request: ConsoleRequest, _ principal: LiveState.Principal, id: String) async throws -> ConsoleResponse {
        guard let session = try await directory.store.impersonation(id: id), mayRead(session, principal.user) else {
            return problem(request, status: 404, code: "not_found", message: "There is no session \(id) you may see.")
        }
        let lines = try await directory.store.sessionAudit(sessionID: id)
        let (actor, target) = live.read { ($0.users[session.actorID], $0.users[session.targetID]) }
        let view = AuditView(query: request.queryItems)
        let records = lines.compactMap { line in (try? JSONSerialization.jsonObject(with: Data(line.line.utf8))) as? [String: Any] }
        let shown = records.filter { record in
            view.shows(type: record["type"] as? String ?? "", path: record["path"] as? String ?? "",
                       requestHeaders: (record["request_headers"] as? [String: Any] ?? [:]).compactMapValues { $0 as? String })
        }
        let window = view.window(total: shown.count)
        let rows = shown[window.range].map(Self.auditRow)
        var context: [String: Any] = [
            "id": session.id, "actor": actor?.displayName ?? session.actorID, "actorUsername": actor?.username ?? "",
            "target": target?.displayName ?? session.targetID, "targetUsername": target?.username ?? "",
            "reason": session.reason, "mode": session.mode.rawValue, "started": Self.timestamp(session.startedAt),
            "ended": session.endedAt.map(Self.timestamp) ?? "", "endReason": session.endReason?.rawValue ?? "",
            "rows": rows, "hasRows": !rows.isEmpty,
            "hideAssets": view.hideAssets, "exclude": view.excludePatterns.joined(separator: ", "),
            "total": records.count, "shownCount": shown.count, "hiddenCount": records.count - shown.count,
            "first": window.range.isEmpty ? 0 : window.range.lowerBound + 1, "last": window.range.upperBound,
            "page": window.page, "pages": window.pages, "paged": window.pages > 1,
            "anyShown": !shown.isEmpty, "anyHidden": shown.count < records.count,
        ]
        // SPEC §10.5: an open session's last page adds each new record as it is logged.
        if session.isOpen, window.page >= window.pages {
            let after = LiveResume.mark(of: lines)
            context["liveSource"] = "/.actas/sessions/\(FormCoding.encode(session.id))/live?after=\(FormCoding.encode(after))"
        }
        context["liveTable"] = !rows.isEmpty || context["liveSource"] != nil
        if window.page > 1 { context["previous"] = "?" + view.query(page: window.page - 1) }
        if window.page < window.pages { context["next"] = "?" + view.query(page: window.page + 1) }
        return .html(200, Templates.page(title: "Session \(session.id)", "session", context, signedIn: signedInContext(principal)))
    }

    /// One line of the log as the page shows it: long parameters and bodies cut, with the
    /// whole value (pretty-printed) behind a `<details>` the reader opens.
    static func auditRow(_ record: [String: Any]) -> [String: Any] {
        let type = record["type"] as? String ?? ""
        var row: [String: Any] = [
            "time": record["ts"] as? String ?? "", "type": type, "isRequest": type == "request",
            "method": record["method"] as? String ?? "", "path": record["path"] as? String ?? "",
            "status": (record["status"] as? Int).map(String.init) ?? "",
            "note": (record["end_reason"] as? String) ?? (record["reason"] as? String) ?? "",
        ]
        for (key, field) in [("query", "query"), ("body", "request_body")] {
            let compact = compactJSON(record[field])
            guard !compact.isEmpty else { continue }  // an empty cell, not an empty box
            let (preview, cut) = AuditView.preview(compact)
            row[key] = ["text": compact, "preview": preview, "cut": cut, "full": cut ? prettyJSON(record[field]) : ""] as [String: Any]
        }
        return row
    }

    static func prettyJSON(_ value: Any?) -> String {
        guard let value, !(value is NSNull),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed, .prettyPrinted])
        else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Redacted values as they are in the log, compact, for a table cell.
    static func compactJSON(_ value: Any?) -> String {
        guard let value, !(value is NSNull),
              let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}
