import ActAsCore
import Foundation

/// One user as an import file describes it: every field but `username` optional, so an import
/// can update some fields of existing users and leave the rest alone.
public struct UserRecordInput: Sendable, Equatable {
    public var username: String
    public var id: String?
    public var email: String?
    public var name: String?
    public var role: String?
    public var groups: [String]?
    public var orgUnit: String?
    public var status: User.Status?
    public var lastLogin: Date?
    public var password: String?
    /// Where it came from, for error messages: `users.csv:4`.
    public var origin: String

    public init(username: String, origin: String = "") {
        self.username = username
        self.origin = origin
    }
}

public struct ImportError: Error, CustomStringConvertible {
    public var messages: [String]
    public var description: String { messages.joined(separator: "\n") }
}

/// `actas users import FILE`: a JSON array of user objects, or CSV with the same column names
/// (groups separated by `;`). SPEC §6. Errors name the file and record/line.
public enum UserImport {
    public static let columns: Set<String> = ["id", "username", "email", "name", "role", "groups", "org_unit", "status", "last_login", "password"]

    public static func parse(_ data: Data, file: String) throws -> [UserRecordInput] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ImportError(messages: ["\(file): not UTF-8 text (save the file as UTF-8 and try again)"])
        }
        let trimmed = text.drop { $0 == "\u{FEFF}" || $0.isWhitespace }
        if trimmed.first == "[" {
            return try parseJSON(data, file: file)
        }
        if trimmed.first == "{" {
            throw ImportError(messages: ["\(file): expected a JSON array of users ([{...}, ...]), found a single object"])
        }
        return try parseCSV(String(text.drop { $0 == "\u{FEFF}" }), file: file)
    }

    // MARK: JSON

    static func parseJSON(_ data: Data, file: String) throws -> [UserRecordInput] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw ImportError(messages: ["\(file): not valid JSON: \((error as NSError).userInfo["NSDebugDescription"] as? String ?? "\(error)")"])
        }
        guard let array = object as? [Any] else { throw ImportError(messages: ["\(file): expected a JSON array of users"]) }
        var records: [UserRecordInput] = []
        var errors: [String] = []
        let lines = elementLines(data)
        for (index, element) in array.enumerated() {
            // `FILE:LINE: user N`, the line where the user's object starts, so an editor can jump there.
            let origin = index < lines.count ? "\(file):\(lines[index]): user \(index + 1)" : "\(file): user \(index + 1)"
            guard let fields = element as? [String: Any] else {
                errors.append("\(origin): expected an object")
                continue
            }
            var strings: [String: String] = [:]
            var groups: [String]?
            for (key, value) in fields {
                guard columns.contains(key) else {
                    errors.append("\(origin): unknown field \"\(key)\" (known: \(columns.sorted().joined(separator: ", ")))")
                    continue
                }
                switch value {
                case is NSNull:
                    continue
                case let text as String:
                    if key == "groups" { groups = splitGroups(text) } else { strings[key] = text }
                case let list as [Any] where key == "groups":
                    guard let list = list as? [String] else {
                        errors.append("\(origin): groups must be an array of strings")
                        continue
                    }
                    groups = list
                default:
                    errors.append("\(origin): \(key) must be a string\(key == "groups" ? " or an array of strings" : "")")
                }
            }
            do {
                records.append(try record(strings, groups: groups, origin: origin))
            } catch let error as ImportError {
                errors.append(contentsOf: error.messages)
            }
        }
        guard errors.isEmpty else { throw ImportError(messages: errors) }
        return records
    }

    /// The 1-based line on which each element of the top-level JSON array starts (the file
    /// already parsed as JSON, so strings and nesting are well-formed).
    static func elementLines(_ data: Data) -> [Int] {
        var lines: [Int] = []
        var line = 1
        var depth = 0
        var inString = false
        var escaped = false
        var expectingElement = false
        for byte in data {
            if byte == 0x0A { line += 1 }
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D:
                continue
            case UInt8(ascii: ","):
                if depth == 1 { expectingElement = true }
                continue
            default:
                break
            }
            if expectingElement && depth == 1 && byte != UInt8(ascii: "]") {
                lines.append(line)
                expectingElement = false
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth == 1 { expectingElement = true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return lines
    }

    // MARK: CSV

    static func parseCSV(_ text: String, file: String) throws -> [UserRecordInput] {
        let rows: [(line: Int, fields: [String])]
        do {
            rows = try CSVReader.rows(text)
        } catch let error as CSVReader.SyntaxError {
            throw ImportError(messages: ["\(file):\(error.line): \(error.message)"])
        }
        guard let header = rows.first else { throw ImportError(messages: ["\(file): empty file"]) }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var errors: [String] = []
        for name in names where !columns.contains(name) {
            errors.append("\(file):\(header.line): unknown column \"\(name)\" (known: \(columns.sorted().joined(separator: ", ")))")
        }
        if !names.contains("username") { errors.append("\(file):\(header.line): a username column is required") }
        if Set(names).count != names.count { errors.append("\(file):\(header.line): a column is named twice") }
        guard errors.isEmpty else { throw ImportError(messages: errors) }
        var records: [UserRecordInput] = []
        for row in rows.dropFirst() {
            if row.fields.count == 1, row.fields[0].isEmpty { continue }  // blank line
            let origin = "\(file):\(row.line)"
            guard row.fields.count == names.count else {
                errors.append("\(origin): expected \(names.count) fields, found \(row.fields.count)")
                continue
            }
            var strings: [String: String] = [:]
            var groups: [String]?
            for (name, value) in zip(names, row.fields) where !value.isEmpty {
                if name == "groups" { groups = splitGroups(value) } else { strings[name] = value }
            }
            do {
                records.append(try record(strings, groups: groups, origin: origin))
            } catch let error as ImportError {
                errors.append(contentsOf: error.messages)
            }
        }
        guard errors.isEmpty else { throw ImportError(messages: errors) }
        return records
    }

    static func splitGroups(_ text: String) -> [String] {
        text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func record(_ fields: [String: String], groups: [String]?, origin: String) throws -> UserRecordInput {
        guard let username = fields["username"], !username.isEmpty else {
            throw ImportError(messages: ["\(origin): username is required"])
        }
        var record = UserRecordInput(username: username, origin: origin)
        record.id = fields["id"]
        record.email = fields["email"]
        record.name = fields["name"]
        record.role = fields["role"]
        record.groups = groups
        record.orgUnit = fields["org_unit"]
        record.password = fields["password"]
        var errors: [String] = []
        if let status = fields["status"] {
            if let parsed = User.Status(rawValue: status) {
                record.status = parsed
            } else {
                errors.append("\(origin): status \"\(status)\" must be one of active, invited, suspended, deleted")
            }
        }
        if let lastLogin = fields["last_login"] {
            if let date = parseDate(lastLogin) {
                record.lastLogin = date
            } else {
                errors.append("\(origin): last_login \"\(lastLogin)\" is not an RFC 3339 time or a date (2026-11-01)")
            }
        }
        guard errors.isEmpty else { throw ImportError(messages: errors) }
        return record
    }

    /// RFC 3339 (with or without fractional seconds) or a plain date (midnight UTC). The
    /// calendar date must exist as written: `2026-02-30` is refused, not rolled over.
    public static func parseDate(_ text: String) -> Date? {
        RFC3339.date(from: text)
    }
}

/// RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF. Small and exact about where an
/// error is, which a user fixing a 5,000-line export needs.
enum CSVReader {
    struct SyntaxError: Error {
        var line: Int
        var message: String
    }

    static func rows(_ text: String) throws -> [(line: Int, fields: [String])] {
        var rows: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field = ""
        var line = 1
        var rowLine = 1
        var inQuotes = false
        var fieldWasQuoted = false
        var scalars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil

        func next() -> Unicode.Scalar? {
            if let scalar = pending {
                pending = nil
                return scalar
            }
            return scalars.next()
        }

        while let scalar = next() {
            if inQuotes {
                if scalar == "\"" {
                    let following = next()
                    if following == "\"" {
                        field.unicodeScalars.append("\"")
                    } else {
                        inQuotes = false
                        pending = following
                    }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case ",":
                fields.append(field)
                field = ""
                fieldWasQuoted = false
            case "\"":
                guard field.isEmpty, !fieldWasQuoted else {
                    throw SyntaxError(line: line, message: "a quote inside an unquoted field (quote the whole field and double inner quotes)")
                }
                inQuotes = true
                fieldWasQuoted = true
            case "\r":
                let following = next()
                if following != "\n" { pending = following }
                fallthrough
            case "\n":
                fields.append(field)
                rows.append((rowLine, fields))
                fields = []
                field = ""
                fieldWasQuoted = false
                line += 1
                rowLine = line
            default:
                if fieldWasQuoted {
                    throw SyntaxError(line: line, message: "text after a closing quote")
                }
                field.unicodeScalars.append(scalar)
            }
        }
        if inQuotes { throw SyntaxError(line: rowLine, message: "a quoted field is never closed") }
        if !field.isEmpty || !fields.isEmpty || fieldWasQuoted {
            fields.append(field)
            rows.append((rowLine, fields))
        }
        return rows
    }
}
