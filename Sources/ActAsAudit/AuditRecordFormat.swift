import ActAsCore

/// How `actas audit tail` prints a record: the line as logged (`--json`), or one
/// human-readable line (time, type, who, what, details, session), escaped for the terminal
/// and coloured when asked.
public struct AuditRecordFormat: Sendable {
    public var json: Bool
    public var colour: Bool

    public init(json: Bool, colour: Bool) {
        self.json = json
        self.colour = colour
    }

    public func render(_ entry: AuditLogEntry) -> String {
        (json ? Self.safeLine(entry) : human(entry)) + "\n"
    }

    /// The line as logged. The writer escapes every dangerous character, so a genuine line is
    /// returned unchanged; a hand-edited line carrying raw ones is re-encoded with the log's escaping.
    public static func safeLine(_ entry: AuditLogEntry) -> String {
        TerminalText.isSafe(entry.line) ? entry.line : entry.fields.jsonText
    }

    private enum Style: String {
        case dim = "2", bold = "1", red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36"
    }

    private func paint(_ text: String, _ style: Style?) -> String {
        guard colour, let style else { return text }
        return "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m"
    }

    private func string(_ entry: AuditLogEntry, _ key: String) -> String? {
        guard let value = entry[key] else { return nil }
        switch value {
        case .null: return nil
        case .string(let text): return TerminalText.safe(text)
        default: return TerminalText.safe(value.jsonText)
        }
    }

    /// `2026-11-06 10:15:23  request  admin as jdoe  GET /api/users → 201  3.2 ms  imp_…`
    public func human(_ entry: AuditLogEntry) -> String {
        var parts: [String] = []
        let time: String
        if let timestamp = entry.timestamp {
            let text = timestamp.rfc3339
            time = String(text.prefix(10)) + " " + String(text.dropFirst(11).prefix(8))
        } else {
            time = string(entry, "ts") ?? "-"
        }
        parts.append(paint(time, .dim))
        let type = string(entry, "type") ?? "?"
        parts.append(paint(type, Self.style(forType: type)))

        var used: Set<String> = ["ts", "type", "seq", "prev", "hash"]
        let user = string(entry, "user")
        let impersonator = string(entry, "impersonator")
        var who: String
        if let impersonator {
            who = paint(impersonator, .bold) + " as " + paint(user ?? "?", .bold)
            used.formUnion(["user", "impersonator"])
        } else if let user {
            who = paint(user, .bold)
            used.insert("user")
        } else if let target = string(entry, "target") {
            who = paint(target, .bold)
            used.insert("target")
        } else if let actor = string(entry, "actor") {
            who = paint(actor, .bold)
            used.insert("actor")
        } else {
            who = "-"
        }
        if let actor = string(entry, "actor"), !used.contains("actor") {
            who += " (by \(actor))"
            used.insert("actor")
        }
        parts.append(who)

        if let method = string(entry, "method"), let path = string(entry, "path") {
            var what = "\(method) \(path)\(query(entry))"
            used.formUnion(["method", "path", "query"])
            if let status = entry["status"]?.integerValue {
                what += " → " + paint(String(status), Self.style(forStatus: status))
                used.insert("status")
            }
            parts.append(what)
        } else if let path = string(entry, "path") {
            parts.append(path + query(entry))
            used.formUnion(["path", "query"])
        }
        if let duration = string(entry, "duration_ms") {
            parts.append("\(duration) ms")
            used.insert("duration_ms")
        }

        // Event details, in log order, as key=value; a request's bulky members stay in --json.
        let quiet: Set<String> = type == "request"
            ? ["request_id", "client_ip", "upstream_ms", "bytes_in", "bytes_out", "request_headers", "request_body", "session_id", "mode", "client_request_id"]
            : ["request_id", "request_headers", "request_body", "session_id", "client_request_id", "upstream_ms", "bytes_in", "bytes_out"]
        var details: [String] = []
        for member in entry.fields.members ?? [] where !used.contains(member.key) && !quiet.contains(member.key) {
            guard let value = string(entry, member.key) else { continue }
            used.insert(member.key)
            let shown = member.key == "justification" || value.contains(" ") || value.isEmpty
                ? "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : value
            let key = TerminalText.safe(member.key)
            let style: Style? = member.key == "reason" || member.key == "end_reason" ? .yellow : nil
            details.append(paint(key + "=", .dim) + paint(shown, style))
        }
        if !details.isEmpty { parts.append(details.joined(separator: " ")) }
        if type == "request", let mode = string(entry, "mode"), mode == "read-only" { parts.append(paint("read-only", .yellow)) }
        if let session = string(entry, "session_id") { parts.append(paint(session, .cyan)) }
        return parts.joined(separator: "  ")
    }

    /// `?name=value&…` from the logged query object.
    private func query(_ entry: AuditLogEntry) -> String {
        guard let members = entry["query"]?.members, !members.isEmpty else { return "" }
        let pairs = members.map { member -> String in
            let value: String
            switch member.value {
            case .string(let text): value = text
            case .array(let values): value = values.map { $0.stringValue ?? $0.jsonText }.joined(separator: ",")
            default: value = member.value.jsonText
            }
            return TerminalText.safe(member.key) + "=" + TerminalText.safe(value)
        }
        return "?" + pairs.joined(separator: "&")
    }

    private static func style(forType type: String) -> Style? {
        switch type {
        case "request": return nil
        case "login", "logout": return .green
        case "login_failed", "request_denied", "impersonation_denied": return .red
        case "impersonation_started", "impersonation_ended": return .magenta
        default: return .blue
        }
    }

    private static func style(forStatus status: Int64) -> Style? {
        switch status {
        case 200..<300: return .green
        case 300..<400: return .cyan
        case 400..<500: return .yellow
        case 500...: return .red
        default: return nil
        }
    }
}
