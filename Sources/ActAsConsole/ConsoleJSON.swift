import ActAsPages
import Foundation

/// The console's JSON, as typed values (SPEC §4's shapes): one encoder for the API, the
/// notices and the live stream, with keys sorted and `/` unescaped as the answers always were.
enum ConsoleJSON {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func data(_ value: some Encodable) -> [UInt8] {
        // Encoding our own value types cannot fail (no non-finite floats, no custom throws).
        (try? Array(encoder().encode(value))) ?? Array("{}".utf8)
    }

    static func text(_ value: some Encodable) -> String {
        String(decoding: data(value), as: UTF8.self)
    }
}

extension ConsoleResponse {
    static func json(_ status: Int, _ value: some Encodable, headers: [(name: String, value: String)] = []) -> ConsoleResponse {
        ConsoleResponse(status: status, headers: [("Content-Type", "application/json")] + securityHeaders + headers, body: ConsoleJSON.data(value) + [0x0A])
    }
}

// MARK: the shapes (SPEC §4)

/// An optional member written as `null` when absent (SPEC's shapes name them), where the
/// synthesized encoding would leave it out.
@propertyWrapper
struct NullWhenAbsent<Value: Encodable & Equatable>: Encodable, Equatable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

/// `{"error": "<code>", "message": "<sentence>"}`.
struct ErrorJSON: Encodable, Equatable {
    var error: String
    var message: String
}

/// `{id, username, name}`: who is meant, as the API names people in sessions.
struct PersonJSON: Encodable, Equatable {
    var id: String
    var username: String
    var name: String
}

/// `/me`'s `user`: always the person who signed in.
struct UserJSON: Encodable, Equatable {
    var id: String
    var username: String
    var email: String
    var name: String
    var role: String
    var groups: [String]
    var orgUnit: String

    enum CodingKeys: String, CodingKey {
        case id, username, email, name, role, groups
        case orgUnit = "org_unit"
    }
}

/// `{"active", "expires_at"}`; `expires_at` is null when there is no active consent.
struct ConsentJSON: Encodable, Equatable {
    var active: Bool
    @NullWhenAbsent var expiresAt: String?

    enum CodingKeys: String, CodingKey {
        case active
        case expiresAt = "expires_at"
    }
}

/// `/me`'s `impersonation` and the start/extend answer; the exit answer adds `ended_at` and
/// `end_reason` (absent otherwise).
struct ImpersonationJSON: Encodable, Equatable {
    var id: String
    var target: PersonJSON
    var mode: String
    var startedAt: String
    var expiresAt: String
    var endedAt: String?
    var endReason: String?

    enum CodingKeys: String, CodingKey {
        case id, target, mode
        case startedAt = "started_at"
        case expiresAt = "expires_at"
        case endedAt = "ended_at"
        case endReason = "end_reason"
    }
}

/// `GET /.actas/api/v1/me`: `impersonation` and `csrf_token` are null when there is none.
struct MeJSON: Encodable, Equatable {
    var user: UserJSON
    @NullWhenAbsent var impersonation: ImpersonationJSON?
    var consent: ConsentJSON
    @NullWhenAbsent var csrfToken: String?

    enum CodingKeys: String, CodingKey {
        case user, impersonation, consent
        case csrfToken = "csrf_token"
    }
}

/// A row of `GET /.actas/api/v1/users`: `reason` is the refusal code, null when impersonable.
struct UserRowJSON: Encodable, Equatable {
    var id: String
    var username: String
    var name: String
    var email: String
    var role: String
    var groups: [String]
    var orgUnit: String
    var status: String
    var impersonable: Bool
    @NullWhenAbsent var reason: String?

    enum CodingKeys: String, CodingKey {
        case id, username, name, email, role, groups, status, impersonable, reason
        case orgUnit = "org_unit"
    }
}

struct UsersJSON: Encodable, Equatable {
    var users: [UserRowJSON]
}

/// A session in the audit API: `ended_at` and `end_reason` null while it runs.
struct SessionJSON: Encodable, Equatable {
    var id: String
    var actor: PersonJSON
    var target: PersonJSON
    var reason: String
    var mode: String
    var startedAt: String
    var expiresAt: String
    @NullWhenAbsent var endedAt: String?
    @NullWhenAbsent var endReason: String?

    enum CodingKeys: String, CodingKey {
        case id, actor, target, reason, mode
        case startedAt = "started_at"
        case expiresAt = "expires_at"
        case endedAt = "ended_at"
        case endReason = "end_reason"
    }
}

struct SessionsJSON: Encodable, Equatable {
    var sessions: [SessionJSON]
}

/// `GET /.actas/api/v1/sessions/{id}/events`: the session, and its records exactly as the log
/// wrote them (already redacted; the same lines the live stream sends), spliced in unchanged.
struct SessionEventsJSON: Encodable {
    var session: SessionJSON
    /// Log lines, each one JSON object.
    var events: [String]

    enum CodingKeys: String, CodingKey {
        case events, session
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(events.compactMap(LogLine.init), forKey: .events)
        try container.encode(session, forKey: .session)
    }
}

/// A log line as a JSON value: encoded as the object it is (a line that is not one is left out
/// by `SessionEventsJSON`).
struct LogLine: Encodable {
    let value: JSONValue

    init?(_ line: String) {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)), case .object = value else { return nil }
        self.value = value
    }

    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

/// Any JSON value, typed: integers stay integers, other numbers doubles.
indirect enum JSONValue: Codable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
