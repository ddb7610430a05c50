import Foundation

/// A running `actas serve` as recorded in the store (SPEC §10.1): commands that change who may
/// do what reach it through its admin listener and wait until it has applied the change.
public struct InstanceRecord: Sendable, Equatable {
    /// `listen.instance_id`, default host name and admin port.
    public var id: String
    /// `host:port` (`[v6]:port`) of its admin listener; "" when it has none.
    public var adminAddress: String
    public var startedAt: Date
    /// Refreshed by the instance's heartbeat.
    public var lastSeen: Date

    public init(id: String, adminAddress: String, startedAt: Date, lastSeen: Date) {
        self.id = id
        self.adminAddress = adminAddress
        self.startedAt = startedAt
        self.lastSeen = lastSeen
    }

    /// How often a running instance refreshes `last_seen`.
    public static let heartbeat: TimeInterval = 2
    /// A row not refreshed for this long belongs to an instance that is gone (killed, host
    /// lost) or hung: three missed heartbeats.
    public static let staleAfter: TimeInterval = 3 * heartbeat
    /// Rows this old are removed by the other instances' heartbeat (`actas instances` keeps
    /// showing a vanished instance for a while, so an operator can see it went away).
    public static let forgetAfter: TimeInterval = 3600

    public func isStale(now: Date) -> Bool {
        now.timeIntervalSince(lastSeen) > Self.staleAfter
    }

    /// The configured id, or `host:adminPort` (`host` alone without an admin listener).
    public static func resolveID(configured: String, hostName: String, adminPort: Int?) -> String {
        if !configured.isEmpty { return configured }
        return adminPort.map { "\(hostName):\($0)" } ?? hostName
    }

    /// `host:port` for a listener address, brackets around IPv6 literals.
    public static func address(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Splits `host:port` / `[v6]:port`; nil for anything else.
    public static func parseAddress(_ text: String) -> (host: String, port: Int)? {
        let host: Substring
        let rest: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            rest = text[text.index(after: close)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            rest = text[colon...]
            if host.contains(":") { return nil }
        }
        guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port), !host.isEmpty else { return nil }
        return (String(host), port)
    }
}

/// What an instance's `POST /sync?change=N` answer says.
public struct SyncAcknowledgement: Sendable, Equatable {
    public var instanceID: String
    /// The change feed position the instance has applied.
    public var change: Int64

    public init(instanceID: String, change: Int64) {
        self.instanceID = instanceID
        self.change = change
    }

    /// The body the admin listener answers with.
    public var body: String {
        "{\"instance\":\(Self.jsonString(instanceID)),\"change\":\(change)}\n"
    }

    /// Parses a whole HTTP/1.1 response (status line, head, body) as the admin listener sends
    /// it; nil unless it is a `200` with a well-formed body.
    public static func parse(response: [UInt8]) -> SyncAcknowledgement? {
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 200 "), let split = text.range(of: "\r\n\r\n") else { return nil }
        struct Body: Decodable {
            var instance: String
            var change: Int64
        }
        guard let body = try? JSONDecoder().decode(Body.self, from: Data(text[split.upperBound...].utf8)) else { return nil }
        return SyncAcknowledgement(instanceID: body.instance, change: body.change)
    }

    /// Status line of an answer that is not a `200`, for the operator's message.
    public static func statusLine(response: [UInt8]) -> String? {
        let text = String(decoding: response.prefix(200), as: UTF8.self)
        guard text.hasPrefix("HTTP/"), let end = text.range(of: "\r\n") else { return nil }
        return String(text[..<end.lowerBound])
    }

    static func jsonString(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// The `change=N` query of `POST /sync`: a non-negative decimal, nothing else.
public func syncTargetChange(query: Substring) -> Int64? {
    var found: Int64?
    for pair in query.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "change" else { continue }
        guard found == nil, !parts[1].isEmpty, parts[1].count <= 18, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int64(parts[1]) else { return nil }
        found = value
    }
    return found
}
