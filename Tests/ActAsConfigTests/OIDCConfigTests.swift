import ActAsConfig
import Foundation
import Testing

/// `[auth.oidc]` (SPEC §10.3): keys, the role_map table, the secret only from a file.
struct OIDCConfigTests {
    let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("oidc-config-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try! Data("  the secret \n".utf8).write(to: url.appendingPathComponent("oidc-secret"))
        return url
    }()

    func load(_ text: String, env: [String: String] = [:]) -> Result<ConfigLoader.Loaded, ConfigErrors> {
        ConfigLoader(path: directory.appendingPathComponent("proxy.conf").path, environment: env).load(text: text)
    }

    static let base = """
        [auth]
        methods = ["oidc", "password"]

        [auth.oidc]
        issuer = "https://idp.example.com/realms/acme"
        client_id = "actas"
        client_secret_file = "oidc-secret"
        """

    @Test func readsEveryKeyAndTheSecretFile() throws {
        let text = Self.base + """

            role_map = { "actas-admins" = "super_admin", "hr" = "hr_admin" }
            default_role = ""
            groups_allow = ["team-*"]
            max_groups = 10
            org_unit_claim = "ou"
            clock_skew = "30s"
            jwks_uri = "https://idp.example.com/keys"
            """
        let oidc = try #require(try load(text).get().config.auth.oidc)
        #expect(oidc.issuer == "https://idp.example.com/realms/acme" && oidc.clientID == "actas")
        #expect(oidc.clientSecret == "the secret")
        #expect(oidc.roleMap == ["actas-admins": "super_admin", "hr": "hr_admin"])
        #expect(oidc.defaultRole == "" && oidc.groupsAllow == ["team-*"] && oidc.maxGroups == 10 && oidc.orgUnitClaim == "ou")
        #expect(oidc.clockSkew == .seconds(30) && oidc.jwksURI == "https://idp.example.com/keys")
        #expect(oidc.scopes == ["openid", "email", "profile"] && oidc.usernameClaim == "preferred_username")
    }

    @Test func roleMapFromTheEnvironment() throws {
        let oidc = try #require(try load(Self.base, env: ["ACTAS_AUTH_OIDC_ROLE_MAP": "admins=owner, hr=hr_admin"]).get().config.auth.oidc)
        #expect(oidc.roleMap == ["admins": "owner", "hr": "hr_admin"])
    }

    @Test func problemsNameFileLineAndKey() throws {
        let text = """
            [auth]
            methods = ["oidc"]

            [auth.oidc]
            client_secret = "literal"
            role_map = { "a" = "emperor" }
            issuer = "http://idp.example.com"
            """
        guard case .failure(let errors) = load(text) else { Issue.record("accepted"); return }
        let lines = errors.issues.map(\.description)
        let path = directory.appendingPathComponent("proxy.conf").path
        #expect(lines.contains("\(path):5: auth.oidc.client_secret: a literal client secret is not accepted; put it in a file readable only by actas and set auth.oidc.client_secret_file"))
        #expect(lines.contains { $0.hasPrefix("\(path):6: auth.oidc.role_map: \"a\" maps to role \"emperor\"") })
        #expect(lines.contains("\(path):7: auth.oidc.issuer: must be an https:// URL"))
        #expect(lines.contains { $0.contains("auth.oidc.client_id: required") })
        #expect(lines.contains { $0.contains("auth.oidc.client_secret_file: required") })
    }

    @Test func roleMapMustBeATableOfStrings() {
        guard case .failure(let errors) = load(Self.base + "\nrole_map = { \"a\" = 1 }") else { Issue.record("accepted"); return }
        #expect(errors.issues.map(\.key) == ["auth.oidc.role_map"])
    }

    @Test func withoutOIDCInMethodsTheSectionIsIgnoredButMTLSIsRefused() throws {
        #expect(try load("[auth.oidc]\nissuer = \"\"").get().config.auth.oidc == nil)
        guard case .failure(let errors) = load("[listen]\nclient_ca = \"ca.pem\"\n[auth]\nmethods = [\"mtls\"]") else {
            Issue.record("mtls accepted"); return
        }
        // mtls is built (MTLSConfigTests); here the CA file does not exist.
        #expect(errors.issues.contains { $0.key == "listen.client_ca" && $0.message.contains("cannot read") })
    }
}
