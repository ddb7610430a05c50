import Foundation
import TOMLKit

/// `[auth.oidc]` and `[auth.mtls]` (SPEC §10.3), typed and checked.
extension ActAsConfig {
    public struct OIDC: Sendable, Equatable {
        /// Exactly as configured: the ID token's `iss` must equal it byte for byte.
        public var issuer: String
        public var clientID: String
        /// Read from `client_secret_file` at load; never from proxy.conf or the environment.
        public var clientSecret: String
        public var scopes: [String]
        /// "" means: from discovery.
        public var authorizationEndpoint: String
        public var tokenEndpoint: String
        public var jwksURI: String
        public var endSessionEndpoint: String
        public var usernameClaim: String
        public var roleClaim: String
        /// Claim value → role.
        public var roleMap: [String: String]
        /// "" refuses a sign-in whose claims map to no role (`no_role`).
        public var defaultRole: String
        public var groupsClaim: String
        public var groupsAllow: [String]
        public var maxGroups: Int
        public var orgUnitClaim: String
        public var clockSkew: ConfigDuration
        /// Absolute path of extra PEM roots, or nil.
        public var caFile: String?

        public init(
            issuer: String, clientID: String, clientSecret: String, scopes: [String] = ["openid", "email", "profile"],
            authorizationEndpoint: String = "", tokenEndpoint: String = "", jwksURI: String = "", endSessionEndpoint: String = "",
            usernameClaim: String = "preferred_username", roleClaim: String = "groups", roleMap: [String: String] = [:],
            defaultRole: String = "employee", groupsClaim: String = "groups", groupsAllow: [String] = [], maxGroups: Int = 50,
            orgUnitClaim: String = "", clockSkew: ConfigDuration = .seconds(60), caFile: String? = nil
        ) {
            self.issuer = issuer
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.scopes = scopes
            self.authorizationEndpoint = authorizationEndpoint
            self.tokenEndpoint = tokenEndpoint
            self.jwksURI = jwksURI
            self.endSessionEndpoint = endSessionEndpoint
            self.usernameClaim = usernameClaim
            self.roleClaim = roleClaim
            self.roleMap = roleMap
            self.defaultRole = defaultRole
            self.groupsClaim = groupsClaim
            self.groupsAllow = groupsAllow
            self.maxGroups = maxGroups
            self.orgUnitClaim = orgUnitClaim
            self.clockSkew = clockSkew
            self.caFile = caFile
        }
    }

    public struct MTLS: Sendable, Equatable {
        /// `cn`, `san_email`, `san_email_local` or `san_dns`.
        public var usernameFrom: String
    }
}

extension ConfigKind {
    var isMap: Bool {
        if case .stringMap = self { return true }
        return false
    }
}

extension ConfigLoader {
    /// A TOML table of strings (`{ "a" = "b" }`).
    static func convertMap(toml value: any TOMLValueConvertible) -> Result<ConfigValue, ConfigValueError> {
        let expected = ConfigValueError("expected a table of strings, e.g. { \"admins\" = \"super_admin\" }")
        guard let table = value.table else { return .failure(expected) }
        var map: [String: String] = [:]
        for name in table.keys {
            guard let item = table[name], item.type == .string, let string = item.string else { return .failure(expected) }
            map[name] = string
        }
        return .success(.map(map))
    }

    /// `ACTAS_…=a=b,c=d`.
    static func convertMap(environment raw: String) -> Result<ConfigValue, ConfigValueError> {
        var map: [String: String] = [:]
        for item in raw.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty else { return .failure(.init("expected name=value pairs separated by commas")) }
            map[parts[0]] = parts[1]
        }
        return .success(.map(map))
    }
}

extension ConfigBuilder {
    func map(_ key: String) -> [String: String] {
        if case .map(let m)? = values[key] { return m }
        preconditionFailure("\(key) is not a map key")
    }

    /// `[auth.oidc]` when `"oidc"` is in `auth.methods` (nil otherwise); every missing or
    /// wrong key is reported, so `check` names all of them at once.
    mutating func buildOIDC(enabled: Bool, roles: [String]) -> ActAsConfig.OIDC? {
        let literalSecret = string("auth.oidc.client_secret")
        if !literalSecret.isEmpty {
            fail("auth.oidc.client_secret", "a literal client secret is not accepted; put it in a file readable only by actas and set auth.oidc.client_secret_file")
        }
        guard enabled else { return nil }
        let issuer = string("auth.oidc.issuer")
        if issuer.isEmpty {
            fail("auth.oidc.issuer", "required when \"oidc\" is in auth.methods, e.g. \"https://idp.example.com/realms/acme\"")
        } else if let problem = Self.httpsURLProblem(issuer) {
            fail("auth.oidc.issuer", problem)
        }
        let clientID = string("auth.oidc.client_id")
        if clientID.isEmpty { fail("auth.oidc.client_id", "required when \"oidc\" is in auth.methods") }
        var secret = ""
        let secretFile = string("auth.oidc.client_secret_file")
        if secretFile.isEmpty {
            fail("auth.oidc.client_secret_file", "required when \"oidc\" is in auth.methods (a file holding the client secret)")
        } else if let data = FileManager.default.contents(atPath: resolve(secretFile)) {
            secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if secret.isEmpty { fail("auth.oidc.client_secret_file", "\(resolve(secretFile)) is empty") }
        } else {
            fail("auth.oidc.client_secret_file", "cannot read \(resolve(secretFile))")
        }
        let scopes = list("auth.oidc.scopes")
        if !scopes.contains("openid") { fail("auth.oidc.scopes", "must contain \"openid\"") }
        for key in ["auth.oidc.authorization_endpoint", "auth.oidc.token_endpoint", "auth.oidc.jwks_uri", "auth.oidc.end_session_endpoint"] {
            let value = string(key)
            if !value.isEmpty, let problem = Self.httpsURLProblem(value) { fail(key, problem) }
        }
        let roleMap = map("auth.oidc.role_map")
        for (value, role) in roleMap.sorted(by: { $0.key < $1.key }) where !roles.contains(role) {
            fail("auth.oidc.role_map", "\"\(value)\" maps to role \"\(role)\", which is not in roles.order", involving: "roles.order")
        }
        let defaultRole = string("auth.oidc.default_role")
        if !defaultRole.isEmpty, !roles.contains(defaultRole) {
            fail("auth.oidc.default_role", "role \"\(defaultRole)\" is not in roles.order (\"\" refuses sign-ins that map to no role)", involving: "roles.order")
        }
        for key in ["auth.oidc.username_claim", "auth.oidc.role_claim", "auth.oidc.groups_claim"] where string(key).isEmpty {
            fail(key, "a claim name is required")
        }
        let caFile = string("auth.oidc.ca_file")
        if !caFile.isEmpty, !FileManager.default.isReadableFile(atPath: resolve(caFile)) {
            fail("auth.oidc.ca_file", "cannot read \(resolve(caFile))")
        }
        return ActAsConfig.OIDC(
            issuer: issuer, clientID: clientID, clientSecret: secret, scopes: scopes,
            authorizationEndpoint: string("auth.oidc.authorization_endpoint"), tokenEndpoint: string("auth.oidc.token_endpoint"),
            jwksURI: string("auth.oidc.jwks_uri"), endSessionEndpoint: string("auth.oidc.end_session_endpoint"),
            usernameClaim: string("auth.oidc.username_claim"), roleClaim: string("auth.oidc.role_claim"), roleMap: roleMap,
            defaultRole: defaultRole, groupsClaim: string("auth.oidc.groups_claim"), groupsAllow: list("auth.oidc.groups_allow"),
            maxGroups: int("auth.oidc.max_groups"), orgUnitClaim: string("auth.oidc.org_unit_claim"),
            clockSkew: duration("auth.oidc.clock_skew"), caFile: caFile.isEmpty ? nil : resolve(caFile))
    }

    /// `[auth.mtls]` when `"mtls"` is in `auth.methods`; it needs `listen.client_ca`. The CA
    /// file is checked whenever it is set: a TLS listener that cannot load it would not start.
    mutating func buildMTLS(enabled: Bool, clientCA: String) -> ActAsConfig.MTLS? {
        if !clientCA.isEmpty {
            let path = resolve(clientCA)
            if let problem = Self.clientCAProblem(path: path) { fail("listen.client_ca", "\(path): \(problem)") }
        }
        guard enabled else { return nil }
        if clientCA.isEmpty {
            fail("auth.methods", "\"mtls\" needs listen.client_ca (the CA that issues client certificates)", involving: "listen.client_ca")
        }
        return ActAsConfig.MTLS(usernameFrom: string("auth.mtls.username_from"))
    }

    /// Why the file cannot be the client CA: unreadable, or no PEM certificate in it.
    static func clientCAProblem(path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return "cannot read the file" }
        guard let text = String(data: data, encoding: .utf8) else { return "not a PEM file" }
        return PEMCertificates.count(in: text) > 0 ? nil : "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file"
    }

    static func httpsURLProblem(_ text: String) -> String? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), url.host?.isEmpty == false else {
            return "\"\(text)\" is not a URL"
        }
        if scheme != "https" { return "must be an https:// URL" }
        if url.query != nil || url.fragment != nil { return "must have no query or fragment" }
        return nil
    }
}
