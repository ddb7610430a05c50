import ActAsCrypto
import Foundation

/// A JSON value, parsed with `JSONDecoder` so that `true` and `1` stay apart.
public indirect enum JSONValue: Sendable, Equatable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var number: Double? { if case .number(let n) = self { return n } else { return nil } }
    public var object: JSONObject? { if case .object(let o) = self { return JSONObject(o) } else { return nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
}

/// A JSON object from a token or a provider answer.
public struct JSONObject: Sendable, Equatable {
    public let members: [String: JSONValue]

    public init(_ members: [String: JSONValue]) { self.members = members }

    public static func parse(_ data: Data) -> JSONObject? {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data) else { return nil }
        return value.object
    }

    public subscript(_ key: String) -> JSONValue? { members[key] }

    public func string(_ key: String) -> String? { members[key]?.string }

    /// JSON numbers as seconds (NumericDate); a boolean is not a number here.
    public func number(_ key: String) -> Double? { members[key]?.number }

    /// `true`, or the string `"true"` some providers send.
    public func bool(_ key: String) -> Bool {
        switch members[key] {
        case .bool(let value)?: return value
        case .string(let text)?: return text.lowercased() == "true"
        default: return false
        }
    }

    /// A string claim as one value, an array claim's strings in order; anything else is none.
    public func strings(_ key: String) -> [String] {
        switch members[key] {
        case .string(let single)?: return [single]
        case .array(let list)?: return list.compactMap(\.string)
        default: return []
        }
    }
}

/// A compact JWS split into its parts; nothing is trusted until `TokenVerifier` says so.
public struct CompactJWS: Sendable {
    public let header: JSONObject
    public let payload: JSONObject
    /// `header.payload` as sent: what the signature covers.
    public let signingInput: Data
    public let signature: Data

    public init?(_ token: String) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= 64 * 1024, parts.count == 3,
              let headerData = Base64URL.decode(String(parts[0])), let header = JSONObject.parse(headerData),
              let payloadData = Base64URL.decode(String(parts[1])), let payload = JSONObject.parse(payloadData),
              let signature = Base64URL.decode(String(parts[2])) else { return nil }
        self.header = header
        self.payload = payload
        self.signingInput = Data("\(parts[0]).\(parts[1])".utf8)
        self.signature = signature
    }
}
