import ActAsConfig
import ActAsCore
import ActAsCrypto
import Foundation
import Testing

@testable import ActAsIdentity

struct ClaimMappingTests {
    static let order = ["owner", "super_admin", "hr_admin", "manager", "employee"]

    func mapping(roleMap: [String: String] = ["actas-admins": "super_admin", "hr": "hr_admin"], defaultRole: String = "employee",
                 allow: [String] = [], max: Int = 50, orgUnitClaim: String = "") -> ClaimMapping {
        ClaimMapping(settings: ActAsConfig.OIDC(
            issuer: "https://idp", clientID: "actas", clientSecret: "s", roleMap: roleMap, defaultRole: defaultRole,
            groupsAllow: allow, maxGroups: max, orgUnitClaim: orgUnitClaim), roleOrder: Self.order)
    }

    func object(_ json: String) -> JSONObject { JSONObject.parse(Data(json.utf8))! }

    @Test func highestRankedMappedRoleWins() {
        #expect(mapping().role(for: ["hr", "staff", "actas-admins"]) == "super_admin")
        #expect(mapping().role(for: ["hr"]) == "hr_admin")
        #expect(mapping().role(for: ["staff"]) == "employee")
        #expect(mapping(defaultRole: "").role(for: ["staff"]) == nil)
    }

    @Test func groupsAreFilteredThenCappedInClaimOrder() {
        let groups = (0..<150).map { "entra-\($0)" } + (0..<150).map { "team-\($0)" } + ["staff", "team-0"]
        #expect(mapping(allow: ["team-*", "staff"], max: 50).groups(groups) == (0..<50).map { "team-\($0)" })
        #expect(mapping(allow: ["staff"]).groups(groups) == ["staff"])
        #expect(mapping(max: 2).groups(["a", "a", "b", "c"]) == ["a", "b"])
        #expect(mapping().groups(["a,b", "", "line\nbreak", "ok"]) == ["ok"])
    }

    @Test func mapsTheClaims() throws {
        let claims = object("""
            {"iss":"https://idp","sub":"s1","sid":"p1","preferred_username":"alice","email":"a@x","email_verified":true,
             "name":"Alice","groups":["hr"],"ou":"acme/emea"}
            """)
        let identity = try mapping(orgUnitClaim: "ou").map(claims).get()
        #expect(identity == OIDCClaims(issuer: "https://idp", subject: "s1", providerSessionID: "p1", username: "alice", email: "a@x",
                                           emailVerified: true, name: "Alice", role: "hr_admin", groups: ["hr"], orgUnit: "acme/emea"))
    }

    @Test func emailVerifiedMustBeTrueNotTruthy() {
        #expect(!object(#"{"email_verified":1}"#).bool("email_verified"))
        #expect(object(#"{"email_verified":"true"}"#).bool("email_verified"))
        #expect(!object(#"{"email_verified":false}"#).bool("email_verified"))
    }

    @Test func noRoleAndNoUsername() {
        #expect(mapping(defaultRole: "").map(object(#"{"preferred_username":"a","groups":["x"]}"#)) == .failure(.noRole))
        #expect(mapping().map(object(#"{"groups":["x"]}"#)) == .failure(.noUsername))
    }
}

struct SignInFlowTests {
    let keys = KeyRing(signing: AssertionKey.generate().key, published: [])

    @Test func cookieRoundTripsAndRefusesTampering() throws {
        let ring = KeyRing(signing: keys.signing, published: [keys.signing])
        let flow = SignInFlow.start(returnPath: "/app?x=1", now: Date(timeIntervalSince1970: 1000))
        let value = try #require(flow.cookieValue(keys: ring))
        #expect(SignInFlow.parse(cookie: value, keys: ring) == flow)
        var parts = value.split(separator: ".").map(String.init)
        parts[3] = Base64URL.encode(Array("//evil".utf8))
        #expect(SignInFlow.parse(cookie: parts.joined(separator: "."), keys: ring) == nil)
        let otherRing = KeyRing(signing: AssertionKey.generate().key, published: [])
        #expect(SignInFlow.parse(cookie: value, keys: KeyRing(signing: otherRing.signing, published: [otherRing.signing])) == nil)
    }

    @Test func pkceIsS256OfTheVerifier() {
        // RFC 7636 appendix B.
        #expect(SignInFlow.challenge(for: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        let flow = SignInFlow.start(returnPath: "/", now: Date())
        #expect(flow.codeVerifier.count == 43 && flow.state != flow.nonce && flow.state != flow.codeVerifier)
    }

    @Test func expiresAfterTenMinutesAndHasAOneUseKey() {
        let start = Date(timeIntervalSince1970: 1000)
        let flow = SignInFlow.start(returnPath: "/", now: start)
        #expect(!flow.expired(now: start.addingTimeInterval(600)))
        #expect(flow.expired(now: start.addingTimeInterval(601)))
        // The one-use claim lasts as long as the flow could pass, and is the same for a copy.
        #expect(flow.usableUntil > start.addingTimeInterval(600) && flow.usableUntil <= start.addingTimeInterval(601))
        let copy = SignInFlow(secret: flow.secret, returnPath: "/other", startedAt: flow.startedAt)
        #expect(copy.oneUseKey == flow.oneUseKey && flow.oneUseKey.count == 64)
        #expect(SignInFlow.start(returnPath: "/", now: start).oneUseKey != flow.oneUseKey)
    }

    @Test func authorizationURLCarriesEverything() {
        let flow = SignInFlow.start(returnPath: "/", now: Date())
        let url = OIDCProvider.authorizationURL(endpoint: "https://idp/auth?tenant=a", clientID: "c i", redirectURI: "https://h/cb",
                                                scopes: ["openid", "email"], flow: flow)
        #expect(url.hasPrefix("https://idp/auth?tenant=a&response_type=code&client_id=c+i&redirect_uri=https%3A%2F%2Fh%2Fcb&scope=openid+email&state="))
        #expect(url.contains("&code_challenge=\(flow.codeChallenge)&code_challenge_method=S256"))
    }

    @Test func configuredEndpointsOverrideDiscovery() {
        let discovery = JSONObject.parse(Data(#"{"authorization_endpoint":"https://d/a","token_endpoint":"https://d/t","jwks_uri":"https://d/k"}"#.utf8))
        let merged = OIDCProvider.merge(
            overrides: ProviderEndpoints(authorization: "", token: "https://o/t", jwks: "", endSession: ""), discovery: discovery)
        #expect(merged == ProviderEndpoints(authorization: "https://d/a", token: "https://o/t", jwks: "https://d/k", endSession: ""))
        #expect(OIDCProvider.discoveryURL(issuer: "https://idp/realms/a/") == "https://idp/realms/a/.well-known/openid-configuration")
        #expect(OIDCProvider.insecureDiscoveredEndpoint(merged, overrides: ProviderEndpoints(authorization: "", token: "", jwks: "", endSession: "")) == nil)
        for bad in ["http://d/t", "HTTP://d/t", "javascript:alert(1)", "https:///t", "https://d/t#f", "//d/t"] {
            let endpoints = ProviderEndpoints(authorization: "https://d/a", token: bad, jwks: "https://d/k", endSession: "")
            let none = ProviderEndpoints(authorization: "", token: "", jwks: "", endSession: "")
            #expect(OIDCProvider.insecureDiscoveredEndpoint(endpoints, overrides: none)?.contains("token_endpoint") == true, "\(bad)")
        }
        let plainEndSession = ProviderEndpoints(authorization: "https://d/a", token: "https://d/t", jwks: "https://d/k", endSession: "http://d/e")
        #expect(OIDCProvider.insecureDiscoveredEndpoint(plainEndSession, overrides: ProviderEndpoints(authorization: "", token: "", jwks: "", endSession: ""))?.contains("end_session_endpoint") == true)
    }
}
