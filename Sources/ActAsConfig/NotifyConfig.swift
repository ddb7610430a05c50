import Foundation

extension ActAsConfig {
    /// `[notify]` (SPEC §10.5): where notifications go, how they are signed, which events.
    public struct Notify: Sendable, Equatable {
        public enum Format: String, Sendable, Equatable {
            case actas, slack
        }

        /// Empty: no webhook (the outbox is still written; nothing is sent).
        public var webhookURL: String
        /// The HMAC key: `webhook_secret_file`'s content with surrounding whitespace trimmed;
        /// nil without a secret file (deliveries are then unsigned).
        public var secret: [UInt8]?
        public var format: Format
        public var events: Set<String>
        public var retryFor: ConfigDuration

        public init(webhookURL: String = "", secret: [UInt8]? = nil, format: Format = .actas,
                    events: Set<String> = Set(NotifyEvents.all), retryFor: ConfigDuration = .seconds(24 * 3600)) {
            self.webhookURL = webhookURL
            self.secret = secret
            self.format = format
            self.events = events
            self.retryFor = retryFor
        }

        public var enabled: Bool { !webhookURL.isEmpty }
    }
}

/// The event types `notify.events` may name (SPEC §10.5).
public enum NotifyEvents {
    public static let all = [
        "impersonation_started", "impersonation_ended", "impersonation_extended", "impersonation_denied",
        "consent_granted", "consent_revoked",
    ]
}

extension ConfigBuilder {
    /// Only from `webhook_secret_file`: a literal secret in proxy.conf would end up in
    /// backups and diffs (the same rule as `auth.oidc.client_secret_file`).
    mutating func buildNotify() -> ActAsConfig.Notify {
        let url = string("notify.webhook_url")
        if !url.isEmpty, let problem = Self.webhookURLProblem(url) { fail("notify.webhook_url", problem) }
        var secret: [UInt8]?
        let secretFile = string("notify.webhook_secret_file")
        if !secretFile.isEmpty {
            let path = resolve(secretFile)
            if let data = FileManager.default.contents(atPath: path) {
                let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                if text.isEmpty { fail("notify.webhook_secret_file", "\(path) is empty") } else { secret = Array(text.utf8) }
            } else {
                fail("notify.webhook_secret_file", "cannot read \(path)")
            }
        }
        return ActAsConfig.Notify(
            webhookURL: url, secret: secret,
            format: ActAsConfig.Notify.Format(rawValue: string("notify.webhook_format")) ?? .actas,
            events: Set(list("notify.events")), retryFor: duration("notify.retry_for"))
    }

    /// `http://` or `https://` with a host, no user info, one line.
    static func webhookURLProblem(_ text: String) -> String? {
        guard text.hasPrefix("https://") || text.hasPrefix("http://") else {
            return "must be an http:// or https:// URL"
        }
        guard !text.contains(where: { $0.isWhitespace || $0.isNewline }),
              let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
            return "is not a valid URL"
        }
        if components.user != nil || components.password != nil {
            return "must not carry a user or password (sign with webhook_secret_file instead)"
        }
        return nil
    }
}
