/// The `[roles]` section of `proxy.conf` (SPEC §6): a seniority order plus three lists of
/// privileges. Built once per configuration; a lookup is one short scan comparing a handful of
/// short names, cheaper than hashing, and never allocates.
public struct RoleRules: Sendable, Equatable {
    /// Roles, most senior first.
    public let order: [String]
    public let impersonators: [String]
    public let scoped: [String]
    public let auditors: [String]

    /// One entry per role named anywhere, roles from `order` first so that rank = index.
    private let entries: [Entry]

    struct Entry: Sendable, Equatable {
        let role: String
        let rank: Int
        let mayImpersonate: Bool
        let isScoped: Bool
        let isAuditor: Bool
    }

    public init(order: [String], impersonators: [String] = [], scoped: [String] = [], auditors: [String] = []) {
        self.order = order
        self.impersonators = impersonators
        self.scoped = scoped
        self.auditors = auditors
        let unranked = order.count
        var entries: [Entry] = []
        // A role listed twice keeps its first (most senior) place.
        for role in order + impersonators + scoped + auditors where !entries.contains(where: { $0.role == role }) {
            entries.append(Entry(
                role: role,
                rank: order.firstIndex(of: role) ?? unranked,
                mayImpersonate: impersonators.contains(role),
                isScoped: scoped.contains(role),
                isAuditor: auditors.contains(role)
            ))
        }
        self.entries = entries
    }

    /// The rank every role missing from `order` shares: below all ranked roles.
    public var unrankedRank: Int { order.count }

    /// Seniority: 0 is the most senior; a role not in `order` ranks below everything.
    public func rank(of role: String) -> Int { entry(role)?.rank ?? unrankedRank }

    /// Whether `role` is strictly more senior than `other`. Two unranked roles are equal, so
    /// neither outranks the other (and neither may act as the other).
    public func outranks(_ role: String, _ other: String) -> Bool { rank(of: role) < rank(of: other) }

    public func mayImpersonate(_ role: String) -> Bool { entry(role)?.mayImpersonate ?? false }
    public func isScoped(_ role: String) -> Bool { entry(role)?.isScoped ?? false }
    public func isAuditor(_ role: String) -> Bool { entry(role)?.isAuditor ?? false }

    /// Everything known about `role` in one scan; nil when the role is named nowhere.
    func entry(_ role: String) -> Entry? {
        for entry in entries where entry.role == role { return entry }
        return nil
    }
}

/// Organisation units are `/`-separated paths (`acme/emea/sales`) compared segment-wise.
public enum OrgUnit {
    /// Whether `unit` is `root` itself or lies beneath it: `acme/emea` covers `acme/emea` and
    /// `acme/emea/sales`, but neither `acme/emea-evil` nor `acme`.
    ///
    /// Fails closed: an empty or malformed unit (leading, trailing or doubled `/`, a `.` or `..`
    /// segment, which a system resolving the path moves elsewhere) covers nothing
    /// and is covered by nothing, so a scoped administrator without an org unit may act as
    /// nobody, and a user without one is outside every scoped administrator's subtree.
    /// Comparison is byte-exact (case-sensitive), like the ids it stands beside.
    public static func covers(_ root: String, _ unit: String) -> Bool {
        withUTF8Bytes(root) { root in
            withUTF8Bytes(unit) { unit in
                guard isWellFormed(root), isWellFormed(unit), unit.count >= root.count else { return false }
                for index in 0..<root.count where unit[index] != root[index] { return false }
                return unit.count == root.count || unit[root.count] == UInt8(ascii: "/")
            }
        }
    }

    /// Non-empty, no empty, `.` or `..` segments: what `UserValidation.checkOrgUnit` admits,
    /// minus the empty unit.
    static func isWellFormed(_ unit: UnsafeBufferPointer<UInt8>) -> Bool {
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        guard let first = unit.first, let last = unit.last, first != slash, last != slash else { return false }
        var segmentStart = 0
        for index in 0...unit.count where index == unit.count || unit[index] == slash {
            switch index - segmentStart {
            case 0: return false
            case 1: if unit[segmentStart] == dot { return false }
            case 2: if unit[segmentStart] == dot && unit[segmentStart + 1] == dot { return false }
            default: break
            }
            segmentStart = index + 1
        }
        return true
    }
}
