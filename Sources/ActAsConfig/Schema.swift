/// Every key `proxy.conf` accepts (SPEC §3), with its type and default. One table drives
/// parsing, validation, env overrides and `check`, so a key cannot be known to one and
/// unknown to another.
public enum ConfigKind: Sendable {
    case string
    case bool
    case int(ClosedRange<Int>)
    case duration
    case size(ClosedRange<Int64>)
    case stringList
    case choice([String])
    case choiceList([String])
    /// `host:port`; `optional` accepts "" for "off".
    case address(optional: Bool)
    /// A table of strings (`auth.oidc.role_map`); env: `a=b,c=d`.
    case stringMap
}

public enum ConfigValue: Sendable, Equatable {
    case string(String)
    case bool(Bool)
    case int(Int)
    case duration(ConfigDuration)
    case size(Int64)
    case list([String])
    case address(SocketAddressSpec?)
    case map([String: String])
}

public struct ConfigKey: Sendable {
    public var section: String
    public var key: String
    public var kind: ConfigKind
    public var defaultValue: ConfigValue

    public var fullName: String { "\(section).\(key)" }

    /// `ACTAS_<SECTION>_<KEY>`, dots in sections as `_`.
    public var environmentName: String {
        "ACTAS_" + (section.replacingOccurrences(of: ".", with: "_") + "_" + key).uppercased()
    }
}

public enum ConfigSchema {
    static let gigabyte: Int64 = 1 << 30

    public static let keys: [ConfigKey] = [
        // [listen]
        .init(section: "listen", key: "https", kind: .address(optional: false), defaultValue: .address(.init(host: "0.0.0.0", port: 8443))),
        .init(section: "listen", key: "http", kind: .address(optional: true), defaultValue: .address(nil)),
        .init(section: "listen", key: "admin", kind: .address(optional: true), defaultValue: .address(.init(host: "127.0.0.1", port: 9901))),
        .init(section: "listen", key: "trusted_proxies", kind: .stringList, defaultValue: .list([])),
        .init(section: "listen", key: "tls_cert", kind: .string, defaultValue: .string("certs/server.crt")),
        .init(section: "listen", key: "tls_key", kind: .string, defaultValue: .string("certs/server.key")),
        .init(section: "listen", key: "client_ca", kind: .string, defaultValue: .string("")),
        .init(section: "listen", key: "dev_certs", kind: .bool, defaultValue: .bool(true)),
        .init(section: "listen", key: "hsts", kind: .string, defaultValue: .string("max-age=31536000")),
        .init(section: "listen", key: "threads", kind: .int(0...256), defaultValue: .int(0)),
        .init(section: "listen", key: "public_hosts", kind: .stringList, defaultValue: .list([])),
        .init(section: "listen", key: "instance_id", kind: .string, defaultValue: .string("")),
        // [upstream]
        .init(section: "upstream", key: "url", kind: .string, defaultValue: .string("http://127.0.0.1:9000")),
        .init(section: "upstream", key: "connect_timeout", kind: .duration, defaultValue: .duration(.seconds(5))),
        .init(section: "upstream", key: "response_timeout", kind: .duration, defaultValue: .duration(.seconds(60))),
        .init(section: "upstream", key: "max_connections", kind: .int(1...100_000), defaultValue: .int(256)),
        // [store]
        .init(section: "store", key: "url", kind: .string, defaultValue: .string("sqlite:data/actas.db")),
        .init(section: "store", key: "pool_size", kind: .int(1...1000), defaultValue: .int(8)),
        .init(section: "store", key: "password_file", kind: .string, defaultValue: .string("")),
        .init(section: "store", key: "grace", kind: .duration, defaultValue: .duration(.seconds(10))),
        // [auth]
        .init(section: "auth", key: "methods", kind: .choiceList(["password", "oidc", "token", "mtls"]), defaultValue: .list(["password"])),
        .init(section: "auth", key: "session_ttl", kind: .duration, defaultValue: .duration(.seconds(12 * 3600))),
        .init(section: "auth", key: "public_paths", kind: .stringList, defaultValue: .list(["/static/*", "/favicon.ico"])),
        .init(section: "auth", key: "max_failed_logins", kind: .int(1...1000), defaultValue: .int(5)),
        .init(section: "auth", key: "max_failed_logins_per_ip", kind: .int(1...100_000), defaultValue: .int(20)),
        .init(section: "auth", key: "failed_login_window", kind: .duration, defaultValue: .duration(.seconds(900))),
        .init(section: "auth.oidc", key: "issuer", kind: .string, defaultValue: .string("")),
        .init(section: "auth.oidc", key: "client_id", kind: .string, defaultValue: .string("")),
        .init(section: "auth.oidc", key: "client_secret", kind: .string, defaultValue: .string("")),
        .init(section: "auth.oidc", key: "client_secret_file", kind: .string, defaultValue: .string("")),
        .init(section: "auth.oidc", key: "role_claim", kind: .string, defaultValue: .string("groups")),
        .init(section: "auth.oidc", key: "scopes", kind: .stringList, defaultValue: .list(["openid", "email", "profile"])),
        .init(section: "auth.oidc", key: "authorization_endpoint", kind: .string, defaultValue: .string("")),
        .init(section: "auth.oidc", key: "token_endpoint", kind: .string, defaultValue: .string("")),
        .init(section: "auth.oidc", key: "jwks_uri", kind: .string, defaultValue: .string("")),
        .init(section: "auth.oidc", key: "end_session_endpoint", kind: .string, defaultValue: .string("")),
        .init(section: "auth.oidc", key: "username_claim", kind: .string, defaultValue: .string("preferred_username")),
        .init(section: "auth.oidc", key: "role_map", kind: .stringMap, defaultValue: .map([:])),
        .init(section: "auth.oidc", key: "default_role", kind: .string, defaultValue: .string("employee")),
        .init(section: "auth.oidc", key: "groups_claim", kind: .string, defaultValue: .string("groups")),
        .init(section: "auth.oidc", key: "groups_allow", kind: .stringList, defaultValue: .list([])),
        .init(section: "auth.oidc", key: "max_groups", kind: .int(0...10_000), defaultValue: .int(50)),
        .init(section: "auth.oidc", key: "org_unit_claim", kind: .string, defaultValue: .string("")),
        .init(section: "auth.oidc", key: "clock_skew", kind: .duration, defaultValue: .duration(.seconds(60))),
        .init(section: "auth.oidc", key: "ca_file", kind: .string, defaultValue: .string("")),
        .init(section: "auth.mtls", key: "username_from", kind: .choice(["cn", "san_email", "san_email_local", "san_dns"]), defaultValue: .string("san_email_local")),
        // [headers]
        .init(section: "headers", key: "user", kind: .string, defaultValue: .string("X-Forwarded-User")),
        .init(section: "headers", key: "email", kind: .string, defaultValue: .string("X-Forwarded-Email")),
        .init(section: "headers", key: "groups", kind: .string, defaultValue: .string("X-Forwarded-Groups")),
        .init(section: "headers", key: "assertion", kind: .string, defaultValue: .string("X-ActAs-Jwt-Assertion")),
        .init(section: "headers", key: "assertion_issuer", kind: .string, defaultValue: .string("")),
        .init(section: "headers", key: "assertion_audience", kind: .string, defaultValue: .string("")),
        // [limits]
        .init(section: "limits", key: "max_header_bytes", kind: .size(1024...(1 << 20)), defaultValue: .size(32 << 10)),
        .init(section: "limits", key: "max_headers", kind: .int(1...10_000), defaultValue: .int(100)),
        .init(section: "limits", key: "max_body", kind: .size(0...(64 * gigabyte)), defaultValue: .size(100 << 20)),
        .init(section: "limits", key: "max_request_line", kind: .size(256...(1 << 20)), defaultValue: .size(8 << 10)),
        .init(section: "limits", key: "header_timeout", kind: .duration, defaultValue: .duration(.seconds(10))),
        .init(section: "limits", key: "idle_timeout", kind: .duration, defaultValue: .duration(.seconds(75))),
        .init(section: "limits", key: "drain_timeout", kind: .duration, defaultValue: .duration(.seconds(15))),
        .init(section: "limits", key: "h2_max_concurrent_streams", kind: .int(1...10_000), defaultValue: .int(100)),
        .init(section: "limits", key: "body_timeout", kind: .duration, defaultValue: .duration(.seconds(30))),
        .init(section: "limits", key: "max_connections", kind: .int(1...1_000_000), defaultValue: .int(10_000)),
        .init(section: "limits", key: "max_rewritten_page", kind: .size((64 << 10)...(1 << 30)), defaultValue: .size(8 << 20)),
        // [roles]
        .init(section: "roles", key: "order", kind: .stringList, defaultValue: .list(["owner", "super_admin", "hr_admin", "manager", "employee"])),
        .init(section: "roles", key: "impersonators", kind: .stringList, defaultValue: .list(["owner", "super_admin", "hr_admin"])),
        .init(section: "roles", key: "scoped", kind: .stringList, defaultValue: .list(["hr_admin"])),
        .init(section: "roles", key: "auditors", kind: .stringList, defaultValue: .list(["owner", "super_admin"])),
        // [impersonation]
        .init(section: "impersonation", key: "consent", kind: .choice(["required", "off"]), defaultValue: .string("required")),
        .init(section: "impersonation", key: "consent_max_hours", kind: .int(1...8760), defaultValue: .int(168)),
        .init(section: "impersonation", key: "default_duration", kind: .duration, defaultValue: .duration(.seconds(3600))),
        .init(section: "impersonation", key: "max_duration", kind: .duration, defaultValue: .duration(.seconds(24 * 3600))),
        .init(section: "impersonation", key: "mode", kind: .choice(["read-write", "read-only", "choose"]), defaultValue: .string("read-write")),
        .init(section: "impersonation", key: "reason_min_length", kind: .int(0...10_000), defaultValue: .int(10)),
        .init(section: "impersonation", key: "impersonable_statuses", kind: .choiceList(["active", "invited", "suspended", "deleted"]), defaultValue: .list(["active", "invited"])),
        .init(section: "impersonation", key: "require_first_login", kind: .bool, defaultValue: .bool(true)),
        .init(section: "impersonation", key: "hidden_paths", kind: .stringList, defaultValue: .list(["/account/security*", "/private/*"])),
        .init(section: "impersonation", key: "paths_case_sensitive", kind: .bool, defaultValue: .bool(false)),
        .init(section: "impersonation", key: "warn_before_end", kind: .duration, defaultValue: .duration(.seconds(300))),
        // [audit]
        .init(section: "audit", key: "file", kind: .string, defaultValue: .string("logs/audit.jsonl")),
        .init(section: "audit", key: "body_capture_bytes", kind: .int(0...(16 << 20)), defaultValue: .int(8192)),
        .init(section: "audit", key: "redact_keys", kind: .stringList, defaultValue: .list(["password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential", "private_key", "ssn"])),
        .init(section: "audit", key: "redact_headers", kind: .stringList, defaultValue: .list(["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"])),
        .init(section: "audit", key: "max_file_size", kind: .size((1 << 10)...(1 << 40)), defaultValue: .size(100 << 20)),
        .init(section: "audit", key: "log_requests", kind: .choice(["all", "impersonated"]), defaultValue: .string("all")),
        .init(section: "audit", key: "checkpoint_every", kind: .int(1...100_000_000), defaultValue: .int(1000)),
        .init(section: "audit", key: "checkpoint_interval", kind: .duration, defaultValue: .duration(.seconds(60))),
        // [notify]
        .init(section: "notify", key: "webhook_url", kind: .string, defaultValue: .string("")),
        .init(section: "notify", key: "webhook_secret_file", kind: .string, defaultValue: .string("")),
        .init(section: "notify", key: "webhook_format", kind: .choice(["actas", "slack"]), defaultValue: .string("actas")),
        .init(section: "notify", key: "events", kind: .choiceList(NotifyEvents.all), defaultValue: .list(NotifyEvents.all)),
        .init(section: "notify", key: "retry_for", kind: .duration, defaultValue: .duration(.seconds(24 * 3600))),
        // [demo]
        .init(section: "demo", key: "enabled", kind: .bool, defaultValue: .bool(false)),
    ]

    public static let sections: Set<String> = Set(keys.map(\.section))
    static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: keys.map { ($0.fullName, $0) })

    public static func key(_ section: String, _ key: String) -> ConfigKey? { byName["\(section).\(key)"] }
}
