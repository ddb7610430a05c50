import ActAsConfig
import Foundation
import Testing

private func load(_ text: String, env: [String: String] = [:], path: String = "/etc/actas/proxy.conf") -> Result<ConfigLoader.Loaded, ConfigErrors> {
    ConfigLoader(path: path, environment: env).load(text: text)
}

private func issues(_ text: String, env: [String: String] = [:]) -> [String] {
    switch load(text, env: env) {
    case .success: return []
    case .failure(let errors): return errors.issues.map(\.description)
    }
}

@Suite("proxy.conf")
struct ConfigTests {
    @Test func defaultsWhenEmpty() throws {
        let config = try #require(load("").value).config
        #expect(config.listen.https == SocketAddressSpec(host: "0.0.0.0", port: 8443))
        #expect(config.listen.http == nil)
        #expect(config.listen.admin == SocketAddressSpec(host: "127.0.0.1", port: 9901))
        #expect(config.listen.tlsCert == "/etc/actas/certs/server.crt")
        #expect(config.upstream.host == "127.0.0.1")
        #expect(config.upstream.port == 9000)
        #expect(config.upstream.maxConnections == 256)
        #expect(config.upstream.responseTimeout == .seconds(60))
        #expect(config.limits.maxHeaderBytes == 32 * 1024)
        #expect(config.limits.maxBody == 100 * 1024 * 1024)
        #expect(config.limits.headerTimeout == .seconds(10))
        #expect(config.store.kind == .sqlite(path: "/etc/actas/data/actas.db"))
        #expect(config.audit.file == "/etc/actas/logs/audit.jsonl")
        #expect(config.demo.enabled == false)
    }

    @Test func readsTheShippedSampleWithEverySection() throws {
        let text = """
            [listen]
            https = "127.0.0.1:8443"
            http = "127.0.0.1:8080"
            admin = "127.0.0.1:9901"
            trusted_proxies = ["10.0.0.0/8", "::1"]
            tls_cert = "certs/server.crt"
            tls_key = "/abs/server.key"
            client_ca = ""
            dev_certs = true

            [upstream]
            url = "http://127.0.0.1:9000"
            connect_timeout = "5s"
            response_timeout = "1m30s"
            max_connections = 64

            [store]
            url = "sqlite:data/actas.db"

            [auth]
            methods = ["password", "token"]
            session_ttl = "12h"
            public_paths = ["/static/*", "/favicon.ico"]

            [auth.oidc]
            issuer = ""
            client_id = ""
            client_secret_file = ""
            role_claim = "groups"

            [headers]
            user = "X-Forwarded-User"

            [limits]
            max_header_bytes = "16KB"
            max_headers = 50
            max_body = "1MB"
            header_timeout = "5s"
            idle_timeout = "75s"
            h2_max_concurrent_streams = 100

            [roles]
            order = ["owner", "super_admin", "hr_admin", "manager", "employee"]
            impersonators = ["owner", "super_admin", "hr_admin"]
            scoped = ["hr_admin"]
            auditors = ["owner", "super_admin"]

            [impersonation]
            consent = "required"
            mode = "choose"
            warn_before_end = "5m"

            [audit]
            file = "-"
            redact_keys = ["password"]
            max_file_size = "100MB"

            [notify]
            webhook_url = ""

            [demo]
            enabled = true
            """
        let config = try #require(load(text).value).config
        #expect(config.listen.http == SocketAddressSpec(host: "127.0.0.1", port: 8080))
        #expect(config.listen.trustedProxies.count == 2)
        #expect(config.listen.tlsKey == "/abs/server.key")
        #expect(config.upstream.responseTimeout == .seconds(90))
        #expect(config.limits.maxHeaderBytes == 16384)
        #expect(config.limits.maxBody == 1 << 20)
        #expect(config.audit.file == nil)
        #expect(config.demo.enabled)
    }

    @Test func errorsNameFileLineAndKey() {
        let text = """
            [listen]
            https = "127.0.0.1:8443"

            [upstream]
            url = "ftp://x"
            response_timout = "5s"
            max_connections = 0

            [limits]
            header_timeout = "500ms"
            max_body = "lots"

            [bogus]
            x = 1
            """
        let found = issues(text)
        #expect(found.contains("/etc/actas/proxy.conf:6: upstream.response_timout: unknown key (did you mean upstream.response_timeout?)"))
        #expect(found.contains("/etc/actas/proxy.conf:7: upstream.max_connections: must be between 1 and 100000"))
        #expect(found.contains("/etc/actas/proxy.conf:10: limits.header_timeout: duration must be at least 1s"))
        #expect(found.contains { $0.hasPrefix("/etc/actas/proxy.conf:11: limits.max_body: ") })
        #expect(found.contains("/etc/actas/proxy.conf:13: bogus: unknown section"))
        // The typed rules are checked alongside the key problems (SPEC §2: every problem at once).
        #expect(found.contains("/etc/actas/proxy.conf:5: upstream.url: must be an http:// URL, e.g. \"http://127.0.0.1:9000\""))
        #expect(found.count == 6)
    }

    @Test(arguments: ["https://app.example", "app.example/", "app.example/x", "app example", "app.example:0", "app.example:65536",
                      "app.example:", "app.example:8x", "user@app.example", "*.example", "", ".", "a..b", "[::1", "app.example,evil"])
    func aBadPublicHostsEntryNamesTheKey(entry: String) {
        let found = issues("[listen]\npublic_hosts = [\"localhost\", \"\(entry)\"]\n")
        #expect(found.count == 1 && found[0].hasPrefix("/etc/actas/proxy.conf:2: listen.public_hosts: "), "\(entry): \(found)")
    }

    @Test func publicHostsEntriesMayNameAPort() {
        #expect(issues("[listen]\npublic_hosts = [\"App.Example\", \"app.example:8443\", \"example.com.\", \"127.0.0.1:443\", \"[::1]:8443\"]\n") == [])
    }

    @Test func aKeyReportedOnceIsNotReportedAgainForItsDefault() {
        // The bad max_duration is dropped and its default (8h) stands in; the default_duration rule
        // would then complain about a value the user never wrote.
        let text = """
            [impersonation]
            max_duration = "forever"
            default_duration = "12h"
            """
        let found = issues(text)
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("/etc/actas/proxy.conf:2: impersonation.max_duration: ") == true)
    }

    @Test func aRefusedKeyIsNotJudgedAgainThroughItsDefault() {
        // roles.impersonators is not a list, so its default stands in; that default names roles
        // the user's roles.order lacks, which is no fault of what the user wrote.
        let text = """
            [roles]
            order = ["boss", "staff"]
            impersonators = "boss"
            scoped = []
            auditors = []
            """
        let found = issues(text)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.hasPrefix("/etc/actas/proxy.conf:3: roles.impersonators: ") == true)
    }

    @Test func crossKeyErrorsAreReportedAtTheirLine() {
        let text = """
            [upstream]
            url = "ftp://x"
            """
        #expect(issues(text) == ["/etc/actas/proxy.conf:2: upstream.url: must be an http:// URL, e.g. \"http://127.0.0.1:9000\""])
    }

    @Test func syntaxErrorsHaveALine() {
        let found = issues("[listen]\nhttps = \"a\n")
        #expect(found.count == 1)
        #expect(found[0].hasPrefix("/etc/actas/proxy.conf:2: "))
    }

    @Test func wrongTypes() {
        let found = issues("[listen]\ndev_certs = \"yes\"\ntrusted_proxies = \"10.0.0.0/8\"\n[limits]\nmax_headers = \"100\"\n")
        #expect(found.contains("/etc/actas/proxy.conf:2: listen.dev_certs: expected true or false"))
        #expect(found.contains { $0.hasPrefix("/etc/actas/proxy.conf:3: listen.trusted_proxies: expected a list") })
        #expect(found.contains("/etc/actas/proxy.conf:5: limits.max_headers: expected an integer"))
    }

    @Test func environmentOverridesWin() throws {
        let env = [
            "ACTAS_UPSTREAM_URL": "http://127.0.0.1:7000",
            "ACTAS_LIMITS_MAX_BODY": "2MB",
            "ACTAS_LISTEN_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.0/16",
            "ACTAS_DEMO_ENABLED": "true",
            "ACTAS_AUTH_OIDC_CLIENT_ID": "abc",
            "ACTAS_NOT_A_KEY": "x",
            "ACTAS_CONFIG": "/somewhere",
        ]
        let loaded = try #require(load("[upstream]\nurl = \"http://127.0.0.1:9000\"\n", env: env).value)
        #expect(loaded.config.upstream.port == 7000)
        #expect(loaded.config.limits.maxBody == 2 << 20)
        #expect(loaded.config.listen.trustedProxies.count == 2)
        #expect(loaded.config.demo.enabled)
        #expect(loaded.config.values["auth.oidc.client_id"] == .string("abc"))
        #expect(loaded.warnings == ["environment variable ACTAS_NOT_A_KEY matches no configuration key; ignored"])
    }

    @Test func badEnvironmentValuesAreErrors() {
        #expect(issues("", env: ["ACTAS_LIMITS_IDLE_TIMEOUT": "soon"]) == ["env:0: limits.idle_timeout: ACTAS_LIMITS_IDLE_TIMEOUT: expected a duration like \"30s\", \"15m\" or \"1h\""])
    }

    @Test func anOverrideRescuesABadFileValueWithAWarningNamingItsLine() throws {
        let text = """
            [impersonation]
            max_duration = "forever"
            default_duration = "1h"
            """
        let loaded = try #require(load(text, env: ["ACTAS_IMPERSONATION_MAX_DURATION": "2h"]).value)
        #expect(loaded.config.impersonation.maxDuration == .seconds(7200))
        #expect(loaded.warnings.count == 1)
        let warning = try #require(loaded.warnings.first)
        #expect(warning.hasPrefix("/etc/actas/proxy.conf:2: impersonation.max_duration: "))
        #expect(warning.hasSuffix("(not used: ACTAS_IMPERSONATION_MAX_DURATION overrides it)"))
    }

    @Test func anOverrideRescuesAFileValueATypedRuleRefuses() throws {
        // Valid TOML and type, refused by a rule of the typed configuration (not a header name).
        let text = "[headers]\nuser = \"X Bad\"\n"
        #expect(issues(text) == ["/etc/actas/proxy.conf:2: headers.user: must be a valid header name"])
        let loaded = try #require(load(text, env: ["ACTAS_HEADERS_USER": "X-User"]).value)
        #expect(loaded.config.headers.user == "X-User")
        #expect(loaded.warnings == [
            "/etc/actas/proxy.conf:2: headers.user: must be a valid header name (not used: ACTAS_HEADERS_USER overrides it)"
        ])
    }

    @Test func anOverrideRescuesABadRoleListButNotAnotherKeysRule() throws {
        let text = """
            [roles]
            order = ["boss", "staff"]
            impersonators = ["nobody"]
            scoped = []
            auditors = []
            """
        // The shadowed list is only a warning…
        let loaded = try #require(load(text, env: ["ACTAS_ROLES_IMPERSONATORS": "boss"]).value)
        #expect(loaded.config.roles.impersonators == ["boss"])
        #expect(loaded.warnings == [
            "/etc/actas/proxy.conf:3: roles.impersonators: role \"nobody\" is not in roles.order (not used: ACTAS_ROLES_IMPERSONATORS overrides it)"
        ])
        // …but the effective configuration must still be valid as a whole.
        #expect(issues(text, env: ["ACTAS_ROLES_ORDER": "boss,nobody,staff", "ACTAS_ROLES_AUDITORS": "ghost"]) == [
            "env:0: roles.auditors: ACTAS_ROLES_AUDITORS: role \"ghost\" is not in roles.order"
        ])
    }

    @Test func aBadOverrideOfABadFileValueIsAnErrorAndTheFileValueAWarning() {
        let result = load("[limits]\nidle_timeout = \"never\"\n", env: ["ACTAS_LIMITS_IDLE_TIMEOUT": "soon"])
        #expect(result.failure?.issues.map(\.description) == [
            "env:0: limits.idle_timeout: ACTAS_LIMITS_IDLE_TIMEOUT: expected a duration like \"30s\", \"15m\" or \"1h\""
        ])
    }

    @Test func demoNeedsALoopbackUpstream() {
        #expect(issues("[upstream]\nurl = \"http://10.1.2.3:9000\"\n[demo]\nenabled = true\n") == [
            "/etc/actas/proxy.conf:4: demo.enabled: the demo app listens on upstream.url, which must then be a loopback address"
        ])
    }

    @Test func rolesMustBeKnown() {
        #expect(issues("[roles]\norder = [\"a\", \"b\"]\nimpersonators = [\"c\"]\nscoped = []\nauditors = []\n") == [
            "/etc/actas/proxy.conf:3: roles.impersonators: role \"c\" is not in roles.order"
        ])
    }

    @Test func unreadableFile() {
        let result = ConfigLoader(path: "/nonexistent/proxy.conf", environment: [:]).load()
        #expect(result.failure?.issues.first?.description.hasPrefix("/nonexistent/proxy.conf:0: -: cannot read") == true)
    }

    @Test(arguments: [
        ("1s", 1000), ("90s", 90_000), ("15m", 900_000), ("1h", 3_600_000), ("1h30m", 5_400_000), ("2d", 172_800_000), ("1500ms", 1500),
    ] as [(String, Int64)])
    func durations(_ text: String, _ milliseconds: Int64) {
        #expect(ConfigDuration.parse(text).value?.milliseconds == milliseconds)
    }

    @Test(arguments: ["", "5", "0s", "500ms", "1 h", "-1s", "1y", "s"])
    func badDurations(_ text: String) {
        #expect(ConfigDuration.parse(text).failure != nil)
    }

    @Test func sizes() {
        #expect(ConfigSize.parse("32KB").value == 32768)
        #expect(ConfigSize.parse("100MB").value == 104_857_600)
        #expect(ConfigSize.parse("1GB").value == 1 << 30)
        #expect(ConfigSize.parse("512").value == 512)
        #expect(ConfigSize.parse("12XB").failure != nil)
        #expect(ConfigSize.parse("KB").failure != nil)
    }

    @Test func cidrs() throws {
        let v4 = try #require(CIDR.parse("10.0.0.0/8").value)
        #expect(v4.contains([10, 1, 2, 3]))
        #expect(!v4.contains([11, 0, 0, 1]))
        #expect(v4.contains([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 9, 9, 9]), "IPv4-mapped IPv6")
        let host = try #require(CIDR.parse("192.168.1.7").value)
        #expect(host.contains([192, 168, 1, 7]))
        #expect(!host.contains([192, 168, 1, 8]))
        let v6 = try #require(CIDR.parse("fd00::/8").value)
        #expect(v6.contains([0xFD] + Array(repeating: 1, count: 15)))
        #expect(CIDR.parse("10.0.0.0/33").failure != nil)
        #expect(CIDR.parse("nonsense").failure != nil)
    }

    @Test func addresses() {
        #expect(SocketAddressSpec.parse("[::1]:8443").value == SocketAddressSpec(host: "::1", port: 8443))
        #expect(SocketAddressSpec.parse("0.0.0.0:80").value == SocketAddressSpec(host: "0.0.0.0", port: 80))
        #expect(SocketAddressSpec.parse("8443").failure != nil)
        #expect(SocketAddressSpec.parse("host:99999").failure != nil)
        #expect(SocketAddressSpec.parse("::1:80").failure != nil)
    }
}

extension Result {
    var value: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
