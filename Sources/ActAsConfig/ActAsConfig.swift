import Foundation

/// The validated configuration. Paths are absolute (resolved against the config file's
/// folder). Sections later features add get their typed views here too.
public struct ActAsConfig: Sendable {
    public struct Listen: Sendable {
        public var https: SocketAddressSpec
        public var http: SocketAddressSpec?
        public var admin: SocketAddressSpec?
        public var trustedProxies: [CIDR]
        public var tlsCert: String
        public var tlsKey: String
        public var clientCA: String?
        public var devCerts: Bool
        /// `Strict-Transport-Security` value added to https answers that lack one; nil: off.
        public var hsts: String?
        /// Event loop threads; 0 means one per core.
        public var threads: Int
        /// Hosts served (`Host` / `:authority`), lower case, `name` or `name:port`; empty: any.
        public var publicHosts: [String]
        /// This instance's id in the store and the log; "" means host name and admin port.
        public var instanceID: String
    }

    public struct Upstream: Sendable {
        public var url: String
        public var host: String
        public var port: Int
        /// `host[:port]` as the upstream expects it in `Host` when the client sent none.
        public var authority: String
        public var connectTimeout: ConfigDuration
        public var responseTimeout: ConfigDuration
        public var maxConnections: Int
    }

    public struct Limits: Sendable {
        public var maxHeaderBytes: Int
        public var maxHeaders: Int
        public var maxBody: Int64
        public var maxRequestLine: Int
        public var headerTimeout: ConfigDuration
        public var idleTimeout: ConfigDuration
        public var drainTimeout: ConfigDuration
        public var h2MaxConcurrentStreams: Int
        /// A request body that makes no progress this long gets 408.
        public var bodyTimeout: ConfigDuration
        /// Client connections beyond are refused at accept.
        public var maxConnections: Int
        /// The most an HTML page is inflated to while the banner is inserted into it.
        public var maxRewrittenPage: Int64
    }

    public struct Store: Sendable {
        public enum Kind: Sendable, Equatable {
            case sqlite(path: String)
            case postgres(PostgresURL)
        }
        public var kind: Kind
        /// PostgreSQL connections per instance (`store.pool_size`).
        public var poolSize: Int = 8
        /// How long requests that need only the in-memory state go on after the last
        /// successful contact with the store (`store.grace`, SPEC §10.2).
        public var grace: ConfigDuration = .seconds(10)
    }

    public struct Audit: Sendable {
        /// Absolute path, or nil for stdout (`"-"`).
        public var file: String?
        public var bodyCaptureBytes: Int
        public var redactKeys: [String]
        public var redactHeaders: [String]
        public var maxFileSize: Int64
        /// `log_requests = "all"`: a record for every request; `"impersonated"`: only requests
        /// made while impersonating (events are always logged).
        public var logAllRequests: Bool
        /// SPEC §10.6: a signed checkpoint after this many records, or after `checkpointInterval`
        /// when records were written since the last one.
        public var checkpointEvery: Int
        public var checkpointInterval: ConfigDuration
    }

    public struct Demo: Sendable {
        public var enabled: Bool
    }

    public struct Auth: Sendable {
        public var methods: [String]
        public var sessionTTL: ConfigDuration
        public var publicPaths: [String]
        /// Failed sign-ins per account, and per client address, within `failedLoginWindow`
        /// before `429`.
        public var maxFailedLogins: Int
        public var maxFailedLoginsPerIP: Int
        public var failedLoginWindow: ConfigDuration
        /// `[auth.oidc]` / `[auth.mtls]`: set when the method is in `methods` (SPEC §10.3).
        public var oidc: OIDC? = nil
        public var mtls: MTLS? = nil

        public var passwordEnabled: Bool { methods.contains("password") }
        /// API tokens work whenever one exists: an operator made it on purpose with `actas
        /// tokens create`, and revokes it with `tokens revoke`. `"token"` in `methods` is
        /// accepted for clarity.
    }

    public struct Headers: Sendable {
        public var user: String
        public var email: String
        public var groups: String
        public var assertion: String
        /// Empty: the public origin of each request (`https://` + its Host).
        public var assertionIssuer: String
        /// Empty: `upstream.url`.
        public var assertionAudience: String
    }

    public struct Roles: Sendable {
        public var order: [String]
        public var impersonators: [String]
        public var scoped: [String]
        public var auditors: [String]
    }

    public struct Impersonation: Sendable {
        public var consentRequired: Bool
        public var consentMaxHours: Int
        public var defaultDuration: ConfigDuration
        public var maxDuration: ConfigDuration
        /// `read-write`, `read-only` or `choose`.
        public var mode: String
        public var reasonMinLength: Int
        public var impersonableStatuses: [String]
        public var requireFirstLogin: Bool
        public var hiddenPaths: [String]
        public var pathsCaseSensitive: Bool
        public var warnBeforeEnd: ConfigDuration
    }

    /// Absolute path of the file this came from.
    public var configPath: String
    public var configDirectory: String
    public var listen: Listen
    public var upstream: Upstream
    public var limits: Limits
    public var store: Store
    public var audit: Audit
    public var demo: Demo
    public var auth: Auth
    public var headers: Headers
    public var roles: Roles
    public var impersonation: Impersonation
    public var notify: Notify = Notify()
    /// Every key's value (defaults included), for sections without a typed view yet.
    public var values: [String: ConfigValue]
}

struct ConfigBuilder {
    let file: String
    let values: [String: ConfigValue]
    let origins: [String: ValueOrigin]
    var issues: [ConfigIssue] = []
    var warnings: [String] = []
    /// Keys whose own value was refused earlier (their default stands in): rules on them, and
    /// rules across keys that involve one of them, stay quiet rather than judge a value nobody
    /// wrote.
    let alreadyReported: Set<String>

    init(file: String, values: [String: ConfigValue], origins: [String: ValueOrigin], alreadyReported: Set<String> = []) {
        self.file = file
        self.alreadyReported = alreadyReported
        var withDefaults = values
        for spec in ConfigSchema.keys where withDefaults[spec.fullName] == nil {
            withDefaults[spec.fullName] = spec.defaultValue
        }
        self.values = withDefaults
        self.origins = origins
    }

    var directory: String {
        let absolute = URL(fileURLWithPath: file).standardizedFileURL
        return absolute.deletingLastPathComponent().path
    }

    /// A rule across keys: reported at `key`, unless one of the keys involved was refused already.
    mutating func fail(_ key: String, _ message: String, involving others: String...) {
        if others.contains(where: alreadyReported.contains) { return }
        fail(key, message)
    }

    mutating func fail(_ key: String, _ message: String) {
        if alreadyReported.contains(key) { return }
        switch origins[key] {
        case .file(let line)?: issues.append(ConfigIssue(file: file, line: line, key: key, message: message))
        case .environment(let name)?: issues.append(ConfigIssue(file: "env", line: 0, key: key, message: "\(name): \(message)"))
        case nil: issues.append(ConfigIssue(file: file, line: 0, key: key, message: message))
        }
    }

    func string(_ key: String) -> String {
        if case .string(let s)? = values[key] { return s }
        preconditionFailure("\(key) is not a string key")
    }
    func bool(_ key: String) -> Bool {
        if case .bool(let b)? = values[key] { return b }
        preconditionFailure("\(key) is not a bool key")
    }
    func int(_ key: String) -> Int {
        if case .int(let i)? = values[key] { return i }
        preconditionFailure("\(key) is not an int key")
    }
    func duration(_ key: String) -> ConfigDuration {
        if case .duration(let d)? = values[key] { return d }
        preconditionFailure("\(key) is not a duration key")
    }
    func size(_ key: String) -> Int64 {
        if case .size(let s)? = values[key] { return s }
        preconditionFailure("\(key) is not a size key")
    }
    func list(_ key: String) -> [String] {
        if case .list(let l)? = values[key] { return l }
        preconditionFailure("\(key) is not a list key")
    }
    func address(_ key: String) -> SocketAddressSpec? {
        if case .address(let a)? = values[key] { return a }
        preconditionFailure("\(key) is not an address key")
    }

    func resolve(_ path: String) -> String {
        guard !path.isEmpty else { return path }
        if path.hasPrefix("/") { return path }
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory + "/")).standardizedFileURL.path
    }

    mutating func build() -> ActAsConfig? {
        // listen
        var trusted: [CIDR] = []
        for entry in list("listen.trusted_proxies") {
            switch CIDR.parse(entry) {
            case .success(let cidr): trusted.append(cidr)
            case .failure(let error): fail("listen.trusted_proxies", error.message)
            }
        }
        let hsts = string("listen.hsts")
        if hsts.contains(where: { $0 == "\r" || $0 == "\n" }) { fail("listen.hsts", "must be a single line") }
        if string("listen.tls_cert").isEmpty { fail("listen.tls_cert", "a certificate file is required") }
        if string("listen.tls_key").isEmpty { fail("listen.tls_key", "a key file is required") }
        let clientCA = string("listen.client_ca")
        for entry in list("listen.public_hosts") {
            if let problem = PublicHostSyntax.problem(entry) { fail("listen.public_hosts", problem) }
        }
        let listen = ActAsConfig.Listen(
            https: address("listen.https")!,
            http: address("listen.http"),
            admin: address("listen.admin"),
            trustedProxies: trusted,
            tlsCert: resolve(string("listen.tls_cert")),
            tlsKey: resolve(string("listen.tls_key")),
            clientCA: clientCA.isEmpty ? nil : resolve(clientCA),
            devCerts: bool("listen.dev_certs"),
            hsts: hsts.isEmpty ? nil : hsts,
            threads: int("listen.threads"),
            publicHosts: list("listen.public_hosts").map { $0.lowercased() },
            instanceID: string("listen.instance_id")
        )
        if let admin = listen.admin, !admin.isLoopback {
            warnings.append("listen.admin \(admin) is not a loopback address: /metrics must never be public")
        }

        // upstream
        let upstreamURL = string("upstream.url")
        var upstream: ActAsConfig.Upstream?
        switch Self.parseHTTPURL(upstreamURL) {
        case .success(let (host, port, authority)):
            upstream = .init(
                url: upstreamURL, host: host, port: port, authority: authority,
                connectTimeout: duration("upstream.connect_timeout"),
                responseTimeout: duration("upstream.response_timeout"),
                maxConnections: int("upstream.max_connections")
            )
        case .failure(let error):
            fail("upstream.url", error.message)
        }

        // limits
        let limits = ActAsConfig.Limits(
            maxHeaderBytes: Int(size("limits.max_header_bytes")),
            maxHeaders: int("limits.max_headers"),
            maxBody: size("limits.max_body"),
            maxRequestLine: Int(size("limits.max_request_line")),
            headerTimeout: duration("limits.header_timeout"),
            idleTimeout: duration("limits.idle_timeout"),
            drainTimeout: duration("limits.drain_timeout"),
            h2MaxConcurrentStreams: int("limits.h2_max_concurrent_streams"),
            bodyTimeout: duration("limits.body_timeout"),
            maxConnections: int("limits.max_connections"),
            maxRewrittenPage: size("limits.max_rewritten_page")
        )
        if limits.maxRequestLine > limits.maxHeaderBytes {
            fail("limits.max_request_line", "must not exceed limits.max_header_bytes", involving: "limits.max_header_bytes")
        }

        // store
        let storeURL = string("store.url")
        var store: ActAsConfig.Store?
        if storeURL.hasPrefix("sqlite:") {
            var path = String(storeURL.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            if path.isEmpty { fail("store.url", "sqlite: needs a file path, e.g. \"sqlite:data/actas.db\"") }
            store = .init(kind: .sqlite(path: resolve(path)), grace: duration("store.grace"))
        } else if PostgresURL.isPostgres(storeURL) {
            switch PostgresURL.parse(storeURL) {
            case .success(var url):
                let passwordFile = string("store.password_file")
                if !passwordFile.isEmpty {
                    if url.password != nil {
                        fail("store.password_file", "the password is already in store.url; give it in one place", involving: "store.url")
                    } else if let data = FileManager.default.contents(atPath: resolve(passwordFile)) {
                        let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
                        if line.isEmpty { fail("store.password_file", "\(resolve(passwordFile)) is empty") }
                        url.password = line
                    } else {
                        fail("store.password_file", "cannot read \(resolve(passwordFile))")
                    }
                }
                store = .init(kind: .postgres(url), poolSize: int("store.pool_size"), grace: duration("store.grace"))
            case .failure(let error):
                fail("store.url", error.message)
            }
        } else {
            fail("store.url", "must start with \"sqlite:\" or \"postgres://\"")
        }

        // audit
        let auditFile = string("audit.file")
        if auditFile.isEmpty { fail("audit.file", "a file path, or \"-\" for stdout, is required") }
        let audit = ActAsConfig.Audit(
            file: auditFile == "-" ? nil : resolve(auditFile),
            bodyCaptureBytes: int("audit.body_capture_bytes"),
            redactKeys: list("audit.redact_keys").map { $0.lowercased() },
            redactHeaders: list("audit.redact_headers").map { $0.lowercased() },
            maxFileSize: size("audit.max_file_size"),
            logAllRequests: string("audit.log_requests") == "all",
            checkpointEvery: int("audit.checkpoint_every"),
            checkpointInterval: duration("audit.checkpoint_interval")
        )

        // other sections: checks that need more than one key
        let order = list("roles.order")
        for key in ["roles.impersonators", "roles.scoped", "roles.auditors"] {
            for role in list(key) where !order.contains(role) {
                fail(key, "role \"\(role)\" is not in roles.order", involving: "roles.order")
            }
        }
        if Set(order).count != order.count { fail("roles.order", "roles must be unique") }
        if duration("impersonation.default_duration").milliseconds > duration("impersonation.max_duration").milliseconds {
            fail("impersonation.default_duration", "must not exceed impersonation.max_duration", involving: "impersonation.max_duration")
        }
        for key in ["headers.user", "headers.email", "headers.groups", "headers.assertion"] {
            let name = string(key)
            if name.isEmpty || !name.utf8.allSatisfy({ Self.isTokenByte($0) }) {
                fail(key, "must be a valid header name")
            }
        }
        for key in ["auth.public_paths", "impersonation.hidden_paths"] {
            for pattern in list(key) where !pattern.hasPrefix("/") {
                fail(key, "\"\(pattern)\" must start with /")
            }
        }

        let methods = list("auth.methods")
        if methods.isEmpty { fail("auth.methods", "at least one sign-in method is required") }
        let auth = ActAsConfig.Auth(
            methods: methods,
            sessionTTL: duration("auth.session_ttl"),
            publicPaths: list("auth.public_paths"),
            maxFailedLogins: int("auth.max_failed_logins"),
            maxFailedLoginsPerIP: int("auth.max_failed_logins_per_ip"),
            failedLoginWindow: duration("auth.failed_login_window"),
            oidc: buildOIDC(enabled: methods.contains("oidc"), roles: order),
            mtls: buildMTLS(enabled: methods.contains("mtls"), clientCA: clientCA))
        let headers = ActAsConfig.Headers(
            user: string("headers.user"), email: string("headers.email"), groups: string("headers.groups"),
            assertion: string("headers.assertion"), assertionIssuer: string("headers.assertion_issuer"),
            assertionAudience: string("headers.assertion_audience"))
        let headerNames = [headers.user, headers.email, headers.groups, headers.assertion].map { $0.lowercased() }
        if Set(headerNames).count != headerNames.count {
            fail("headers.user", "headers.user, email, groups and assertion must be four different names",
                 involving: "headers.email", "headers.groups", "headers.assertion")
        }
        for key in ["headers.assertion_issuer", "headers.assertion_audience"] where string(key).contains(where: { $0.isNewline }) {
            fail(key, "must be a single line")
        }
        let roles = ActAsConfig.Roles(
            order: order, impersonators: list("roles.impersonators"), scoped: list("roles.scoped"), auditors: list("roles.auditors"))
        if order.isEmpty { fail("roles.order", "at least one role is required") }
        let impersonation = ActAsConfig.Impersonation(
            consentRequired: string("impersonation.consent") == "required",
            consentMaxHours: int("impersonation.consent_max_hours"),
            defaultDuration: duration("impersonation.default_duration"),
            maxDuration: duration("impersonation.max_duration"),
            mode: string("impersonation.mode"),
            reasonMinLength: int("impersonation.reason_min_length"),
            impersonableStatuses: list("impersonation.impersonable_statuses"),
            requireFirstLogin: bool("impersonation.require_first_login"),
            hiddenPaths: list("impersonation.hidden_paths"),
            pathsCaseSensitive: bool("impersonation.paths_case_sensitive"),
            warnBeforeEnd: duration("impersonation.warn_before_end"))

        let notify = buildNotify()
        let demo = ActAsConfig.Demo(enabled: bool("demo.enabled"))
        if demo.enabled, let upstream, !SocketAddressSpec(host: upstream.host, port: upstream.port).isLoopback {
            fail("demo.enabled", "the demo app listens on upstream.url, which must then be a loopback address", involving: "upstream.url")
        }

        guard issues.isEmpty, let upstream, let store else { return nil }
        return ActAsConfig(
            configPath: URL(fileURLWithPath: file).standardizedFileURL.path,
            configDirectory: directory,
            listen: listen, upstream: upstream, limits: limits, store: store, audit: audit, demo: demo,
            auth: auth, headers: headers, roles: roles, impersonation: impersonation, notify: notify,
            values: values
        )
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// `http://host[:port][/]` → host, port, authority. Only plain HTTP upstreams for now.
    static func parseHTTPURL(_ text: String) -> Result<(String, Int, String), ConfigValueError> {
        guard text.hasPrefix("http://") else {
            return .failure(.init(text.hasPrefix("https://")
                ? "https upstreams are not supported yet; use http:// on a trusted network"
                : "must be an http:// URL, e.g. \"http://127.0.0.1:9000\""))
        }
        var rest = Substring(text.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("@"), !rest.contains("?"), !rest.isEmpty else {
            return .failure(.init("must be http://host[:port] without a path, user or query"))
        }
        let authority = String(rest)
        let hasPort = rest.hasPrefix("[") ? rest.contains("]:") : rest.contains(":")
        let address = hasPort ? authority : (rest.hasPrefix("[") ? "\(authority):80" : "\(authority):80")
        switch SocketAddressSpec.parse(address) {
        case .success(let spec):
            guard spec.port > 0 else { return .failure(.init("port must be 1 to 65535")) }
            return .success((spec.host, spec.port, authority))
        case .failure(let error):
            return .failure(error)
        }
    }
}
