import Foundation

/// A person in the user directory (SPEC §6). Ids are opaque strings (`usr_…` when ActAs makes
/// them; imports may bring their own).
public struct User: Sendable, Equatable, Hashable {
    public enum Status: String, Sendable, CaseIterable, Codable {
        case active, invited, suspended, deleted

        /// Whether the person may sign in (and keep signed-in sessions alive).
        public var maySignIn: Bool { self == .active || self == .invited }
    }

    public var id: String
    public var username: String
    public var email: String
    public var name: String
    public var role: String
    public var groups: [String]
    /// Organisation path such as `acme/emea/sales`; empty when none.
    public var orgUnit: String
    public var status: Status
    public var lastLogin: Date?
    /// PHC-style password hash, nil when the user has no password (e.g. OIDC only).
    public var passwordHash: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, username: String, email: String = "", name: String = "", role: String = "employee",
        groups: [String] = [], orgUnit: String = "", status: Status = .active, lastLogin: Date? = nil,
        passwordHash: String? = nil, createdAt: Date = Date(), updatedAt: Date = Date()
    ) {
        self.id = id
        self.username = username
        self.email = email
        self.name = name
        self.role = role
        self.groups = groups
        self.orgUnit = orgUnit
        self.status = status
        self.lastLogin = lastLogin
        self.passwordHash = passwordHash
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The name to show people: the display name, else the username.
    public var displayName: String { name.isEmpty ? username : name }
}

/// Rules for the user directory's fields, shared by the CLI, imports and the console.
public enum UserValidation {
    /// Usernames travel in headers and URLs: letters, digits and `._@+-`, 1–128 characters.
    public static func checkUsername(_ username: String) -> String? {
        guard !username.isEmpty, username.utf8.count <= 128 else { return "username must be 1 to 128 characters" }
        let allowed = username.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-", "@", "+": return true
            default: return false
            }
        }
        return allowed ? nil : "username \"\(username)\" may contain only letters, digits and . _ - @ +"
    }

    /// Ids are opaque but also travel in headers and JWTs: printable ASCII without spaces or commas.
    public static func checkID(_ id: String) -> String? {
        guard !id.isEmpty, id.utf8.count <= 128 else { return "id must be 1 to 128 characters" }
        let ok = id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: "\"") }
        return ok ? nil : "id \"\(id)\" may contain only printable ASCII without spaces, commas or quotes"
    }

    /// Directory fields travel in headers (a CR/LF would split one) and are shown in terminals
    /// and pages (U+202E reverses the rest of a table row, U+2028 breaks a line): control
    /// characters (C0, DEL, C1), line/paragraph separators and bidi controls are refused
    /// (`TerminalText.isRefusedInDirectory`). The message names the character, not the value.
    public static func checkHeaderSafe(_ value: String, field: String) -> String? {
        guard let bad = value.unicodeScalars.first(where: TerminalText.isRefusedInDirectory) else { return nil }
        let hex = String(bad.value, radix: 16, uppercase: true)
        return "\(field) must not contain control, line-separator or bidirectional-control characters"
            + " (found U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex))"
    }

    /// Groups are comma-joined in `X-Forwarded-Groups`, so a group cannot contain a comma.
    public static func checkGroup(_ group: String) -> String? {
        if group.isEmpty { return "groups must not be empty strings" }
        if group.contains(",") { return "group \"\(group)\" must not contain a comma" }
        return checkHeaderSafe(group, field: "group")
    }

    /// Org units are `/`-separated paths without empty, `.` or `..` segments: `acme/emea/sales`.
    /// Any system that resolves `acme/emea/../hq` puts it outside `acme/emea`, so such a unit
    /// is refused wherever one enters the directory (CLI, imports, sign-in from an identity
    /// provider); `OrgUnit.covers` also refuses them for rows already stored.
    public static func checkOrgUnit(_ orgUnit: String) -> String? {
        if orgUnit.isEmpty { return nil }
        if let problem = checkHeaderSafe(orgUnit, field: "org_unit") { return problem }
        if orgUnit.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            return "org_unit \"\(orgUnit)\" must be a path like acme/emea/sales (no empty, \".\" or \"..\" segments)"
        }
        return nil
    }

    /// Every problem with a user record, in field order; empty when valid.
    public static func problems(_ user: User, knownRoles: [String]) -> [String] {
        var problems: [String] = []
        if let problem = checkID(user.id) { problems.append(problem) }
        if let problem = checkUsername(user.username) { problems.append(problem) }
        if let problem = checkHeaderSafe(user.email, field: "email") { problems.append(problem) }
        if user.email.contains(",") { problems.append("email must not contain a comma") }
        if let problem = checkHeaderSafe(user.name, field: "name") { problems.append(problem) }
        if !knownRoles.contains(user.role) {
            problems.append("role \"\(user.role)\" is not one of roles.order (\(knownRoles.joined(separator: ", ")))")
        }
        for group in user.groups {
            if let problem = checkGroup(group) { problems.append(problem) }
        }
        if let problem = checkOrgUnit(user.orgUnit) { problems.append(problem) }
        return problems
    }
}
