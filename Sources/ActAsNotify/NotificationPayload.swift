import ActAsConfig
import ActAsCore
import ActAsStore
import Foundation

/// The body of one webhook POST (SPEC §10.5). Built from the outbox row only, which holds
/// names and ids, never a secret, a cookie, a header or a request body.
public struct NotificationPayload: Codable, Sendable, Equatable {
    public struct Person: Codable, Sendable, Equatable {
        public var id: String?
        public var username: String
        public var name: String?
    }

    public var id: String
    public var type: String
    public var ts: String
    public var session_id: String?
    public var actor: Person?
    public var target: Person?
    public var reason: String?
    public var mode: String?
    public var expires_at: String?
    public var end_reason: String?
    public var url: String?

    public init(_ n: OutboxNotification, origin: String) {
        id = n.id
        type = n.type
        ts = RFC3339.string(from: n.createdAt, fraction: true)
        session_id = n.sessionID
        actor = n.actor.map { Person(id: $0.id, username: $0.username, name: $0.name) }
        target = n.target.map { Person(id: $0.id, username: $0.username, name: $0.name) }
        reason = n.reason.flatMap { $0.isEmpty ? nil : $0 }
        mode = n.mode
        expires_at = n.expiresAt.map { RFC3339.string(from: $0) }  // as the API shows it
        end_reason = n.endReason
        url = n.sessionID.map { "\(origin)/.actas/sessions/\($0)" }
    }

    /// `actas notify test`.
    public static func test(id: String, at: Date) -> NotificationPayload {
        NotificationPayload(OutboxNotification(id: id, type: "test", createdAt: at, orderKey: id), origin: "")
    }

    /// Compact JSON; `/` unescaped so the `url` reads as sent.
    public func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8))
    }

    /// A Slack-compatible body (`webhook_format = "slack"`): one line of text, with the link.
    public func slackJSON() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(["text": sentence])) ?? Data("{}".utf8))
    }

    /// Escaped for Slack: names and usernames come from the identity provider or the user
    /// store, and a denied attempt's target is whatever the actor typed.
    func label(_ person: Person?) -> String {
        guard let person else { return "someone" }
        let username = Self.slackEscaped(person.username)
        if let name = person.name, !name.isEmpty, name != person.username { return "\(Self.slackEscaped(name)) (\(username))" }
        return username
    }

    /// What a person reads in a chat channel.
    public var sentence: String {
        var text: String
        switch type {
        case "impersonation_started": text = "\(label(actor)) is acting as \(label(target))"
        case "impersonation_extended": text = "\(label(actor)) extended acting as \(label(target))"
        case "impersonation_ended": text = "\(label(actor)) stopped acting as \(label(target))"
        case "impersonation_denied": text = "\(label(actor)) was refused acting as \(label(target))"
        case "consent_granted": text = "\(label(target)) allowed administrators to act as them"
        case "consent_revoked": text = "\(label(target)) revoked consent to be acted as"
        case "test": text = "ActAs test notification"
        default: text = Self.slackEscaped(type)
        }
        if let reason { text += " — reason: \(Self.slackEscaped(reason))" }
        if let end_reason { text += " — ended: \(Self.slackEscaped(end_reason))" }
        if let expires_at, type != "consent_revoked" { text += " — until \(expires_at)" }
        if let url { text += " — <\(url)|See what they do>" }
        return text
    }

    /// Slack's mrkdwn control characters (`&`, `<`, `>`) in every interpolated value.
    static func slackEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// The public origin the `url` member links to: the first `listen.public_hosts` entry, else
/// the https listener's address (`localhost` for a wildcard one), since notifications are
/// made outside any request and so have no `Host` to go by.
public enum PublicOrigin {
    public static func of(_ config: ActAsConfig) -> String {
        if let host = config.listen.publicHosts.first { return "https://\(host)" }
        let listen = config.listen.https
        let wildcard = ["0.0.0.0", "::", "", "*"].contains(listen.host)
        var host = wildcard ? "localhost" : listen.host
        if host.contains(":") { host = "[\(host)]" }
        return listen.port == 443 ? "https://\(host)" : "https://\(host):\(listen.port)"
    }
}
