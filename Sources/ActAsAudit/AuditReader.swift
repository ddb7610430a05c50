/// One line of the log read back, for `actas audit tail` and `export` (off the hot path).
public struct AuditLogEntry: Sendable {
    /// The whole record as parsed.
    public let fields: AuditValue
    /// The line as written (without `\n`).
    public let line: String

    /// nil when the line is not a JSON object.
    public init?(line: some Collection<UInt8>) {
        let bytes = Array(line)
        guard let value = try? JSONParser.parse(bytes, maxDepth: 128), case .object = value else { return nil }
        self.fields = value
        self.line = String(decoding: bytes, as: UTF8.self)
    }

    public init?(line: String) {
        self.init(line: Array(line.utf8))
    }

    public subscript(key: String) -> AuditValue? { fields[key] }

    public var seq: UInt64? { fields["seq"]?.integerValue.flatMap { $0 > 0 ? UInt64($0) : nil } }
    public var type: String? { fields["type"]?.stringValue }
    public var timestamp: AuditTimestamp? { fields["ts"]?.stringValue.flatMap(AuditTimestamp.parse) }
    public var user: String? { fields["user"]?.stringValue }
    public var impersonator: String? { fields["impersonator"]?.stringValue }
    public var sessionID: String? { fields["session_id"]?.stringValue }
    public var actor: String? { fields["actor"]?.stringValue }
    public var target: String? { fields["target"]?.stringValue }
}

/// What `audit tail`/`export` select. Every set condition must hold.
public struct AuditLogFilter: Sendable {
    public var sessionID: String?
    /// Matches `user` (the effective user) or `target`.
    public var user: String?
    public var impersonator: String?
    /// The person who acted: matches `impersonator` or `actor` (`audit tail --actor`).
    public var actor: String?
    public var types: Set<String>?
    /// Inclusive lower bound on `ts`.
    public var from: AuditTimestamp?
    /// Exclusive upper bound on `ts`.
    public var to: AuditTimestamp?

    public init(
        sessionID: String? = nil, user: String? = nil, impersonator: String? = nil, actor: String? = nil,
        types: Set<String>? = nil, from: AuditTimestamp? = nil, to: AuditTimestamp? = nil
    ) {
        self.sessionID = sessionID
        self.user = user
        self.impersonator = impersonator
        self.actor = actor
        self.types = types
        self.from = from
        self.to = to
    }

    public func matches(_ entry: AuditLogEntry) -> Bool {
        if let sessionID, entry.sessionID != sessionID { return false }
        if let user, entry.user != user && entry.target != user { return false }
        if let impersonator, entry.impersonator != impersonator { return false }
        if let actor, entry.impersonator != actor && entry.actor != actor { return false }
        if let types, !types.contains(entry.type ?? "") { return false }
        if from != nil || to != nil {
            guard let timestamp = entry.timestamp else { return false }
            if let from, timestamp < from { return false }
            if let to, timestamp >= to { return false }
        }
        return true
    }
}

public enum AuditLogReader {
    /// Calls `body` for each record of `files` (in the given order) that passes `filter`. Lines
    /// that are not records are skipped (`audit verify` is the tool that reports them). Stops
    /// when `body` returns false. Throws when a file cannot be read.
    public static func forEachEntry(
        in files: [String], matching filter: AuditLogFilter = AuditLogFilter(), _ body: (AuditLogEntry) -> Bool
    ) throws(AuditError) {
        for file in files {
            var stop = false
            let failure = AuditFiles.forEachLine(path: file) { line, _, terminated in
                guard terminated, let entry = AuditLogEntry(line: line), filter.matches(entry) else { return true }
                if !body(entry) { stop = true }
                return !stop
            }
            if let failure { throw AuditError(kind: .open, path: file, code: failure, message: "cannot read") }
            if stop { return }
        }
    }
}
