/// A JSON value as it is written into the request log: what the redactor produces from queries,
/// headers and bodies, and what the reader gives back for a logged line. Objects keep their
/// members in order, so a record's bytes never depend on hashing or dictionary order.
public enum AuditValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    /// A JSON number literal kept as text (from parsed bodies, so nothing is lost or reformatted).
    /// The encoder writes it only if it is a valid JSON number, otherwise as a string.
    case number(String)
    case string(String)
    case array([AuditValue])
    case object([Member])

    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: AuditValue

        public init(_ key: String, _ value: AuditValue) {
            self.key = key
            self.value = value
        }
    }

    /// The value of the first member named `key`, for objects.
    public subscript(key: String) -> AuditValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var integerValue: Int64? {
        if case .integer(let number) = self { return number }
        return nil
    }

    public var arrayValue: [AuditValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var members: [Member]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// Compact JSON with the log's escaping (one line, terminal-safe), e.g. for `audit export`.
    public var jsonText: String {
        var bytes: [UInt8] = []
        JSONWriter.writeValue(self, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
