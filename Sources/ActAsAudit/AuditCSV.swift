import ActAsCore

/// `actas audit export --format csv`: RFC 4180 with a fixed header row.
public enum AuditCSV {
    /// Every key a record can have, in log order; members of no known key go to `extra` as JSON.
    public static let columns: [String] = AuditRecord.keyOrder.filter { $0 != "prev" && $0 != "hash" } + ["extra", "prev", "hash"]
    private static let known = Set(AuditRecord.keyOrder)

    public static var header: String { columns.joined(separator: ",") + "\r\n" }

    public static func row(_ entry: AuditLogEntry) -> String {
        let members = entry.fields.members ?? []
        var cells: [String] = []
        cells.reserveCapacity(columns.count)
        for column in columns {
            if column == "extra" {
                let others = members.filter { !known.contains($0.key) }
                cells.append(others.isEmpty ? "" : cell(AuditValue.object(others).jsonText))
            } else if let value = members.first(where: { $0.key == column })?.value {
                cells.append(cell(text(value)))
            } else {
                cells.append("")
            }
        }
        return cells.joined(separator: ",") + "\r\n"
    }

    private static func text(_ value: AuditValue) -> String {
        switch value {
        case .null: return ""
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let number): return String(number)
        case .number(let literal): return literal
        case .string(let text): return text
        case .array, .object: return value.jsonText
        }
    }

    /// Escaped like the log (no raw controls), formula-neutralised, RFC 4180 quoted.
    public static func cell(_ raw: String) -> String {
        var text = TerminalText.safe(raw)
        if let first = raw.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) {
            text = "'" + text
        }
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }) {
            text = "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }
}
