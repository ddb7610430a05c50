import ActAsConfig
import ActAsCore
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A sign-in that did not work, with SPEC §10.3's code and status.
public struct OIDCFailure: Error, Sendable, Equatable {
    public var code: String
    public var status: Int
    /// For the person; never a token.
    public var message: String
    /// For the operator's log: what exactly failed.
    public var detail: String

    public static func state(_ detail: String) -> OIDCFailure {
        .init(code: "oidc_state", status: 401, message: "This sign-in link expired or was already used. Start the sign-in again.", detail: detail)
    }
    public static func token(_ detail: String) -> OIDCFailure {
        .init(code: "oidc_token", status: 401, message: "The identity provider did not accept the sign-in. Start the sign-in again.", detail: detail)
    }
    public static func idToken(_ detail: String) -> OIDCFailure {
        .init(code: "oidc_id_token", status: 401, message: "The identity provider's answer could not be verified. Start the sign-in again.", detail: detail)
    }
    public static func unavailable(_ detail: String) -> OIDCFailure {
        .init(code: "oidc_provider_unavailable", status: 502, message: "The identity provider cannot be reached right now. Try again in a moment.", detail: detail)
    }
    public static let noRole = OIDCFailure(code: "no_role", status: 403, message: "Your account has no role that may use this application. Ask an administrator.", detail: "no claim value maps to a role")
    public static let suspended = OIDCFailure(code: "user_suspended", status: 403, message: "This account is suspended or deleted and cannot sign in. Ask an administrator.", detail: "user may not sign in")
    public static func conflict(_ detail: String) -> OIDCFailure {
        .init(code: "account_conflict", status: 403, message: "Another account already uses this username or email. Ask an administrator to link them.", detail: detail)
    }
}

/// The provider's endpoints: from `[auth.oidc]` where set, else from discovery.
public struct ProviderEndpoints: Sendable, Equatable {
    public var authorization: String
    public var token: String
    public var jwks: String
    /// "" when the provider has none.
    public var endSession: String
}

/// Everything that talks to the identity provider (off the request path: the console awaits
/// it). Discovery and keys are cached; every call has a deadline, so an unreachable provider
/// is a quick `502 oidc_provider_unavailable`, never a hang.
public final class OIDCProvider: Sendable {
    public let settings: ActAsConfig.OIDC
    public let mapping: ClaimMapping
    public let verifier: TokenVerifier
    private let client: HTTPClient
    private let state = Mutex(Cache())
    /// Per provider call (connect included).
    static let deadline: TimeAmount = .seconds(10)
    /// How long a client replaced by a reload stays up: a sign-in makes at most a few calls in
    /// a row (discovery, token, keys), each within `deadline`.
    public static let retirement: Duration = .seconds(60)
    static let discoveryLifetime: TimeInterval = 3600
    static let maxBody = 1 << 20

    struct Cache {
        var endpoints: ProviderEndpoints?
        var endpointsAt: Date?
        var keys = KeySetCache()
        /// The one JWKS fetch under way: concurrent callers await it rather than start another.
        var keysFetch: Task<ProviderKeySet?, Never>?
        var refetch = JWKSRefetchPolicy()
    }

    public init(settings: ActAsConfig.OIDC, roleOrder: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.settings = settings
        self.mapping = ClaimMapping(settings: settings, roleOrder: roleOrder)
        self.verifier = TokenVerifier(issuer: settings.issuer, clientID: settings.clientID, clockSkew: settings.clockSkew.seconds)
        var tls = TLSConfiguration.makeClientConfiguration()
        var extra: [NIOSSLAdditionalTrustRoots] = []
        // The system store plus SSL_CERT_FILE (as OpenSSL-based tools read it) plus ca_file.
        if let file = environment["SSL_CERT_FILE"], !file.isEmpty, FileManager.default.isReadableFile(atPath: file) {
            extra.append(.certificates(try NIOSSLCertificate.fromPEMFile(file)))
        }
        if let caFile = settings.caFile {
            extra.append(.certificates(try NIOSSLCertificate.fromPEMFile(caFile)))
        }
        tls.additionalTrustRoots = extra
        let configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(5), read: .seconds(10)), decompression: .disabled)
        self.client = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    // MARK: endpoints

    public func endpoints(now: Date = Date()) async -> Result<ProviderEndpoints, OIDCFailure> {
        if let cached = state.withLock({ cache -> ProviderEndpoints? in
            guard let at = cache.endpointsAt, now.timeIntervalSince(at) < Self.discoveryLifetime else { return nil }
            return cache.endpoints
        }) {
            return .success(cached)
        }
        let overrides = ProviderEndpoints(
            authorization: settings.authorizationEndpoint, token: settings.tokenEndpoint, jwks: settings.jwksURI,
            endSession: settings.endSessionEndpoint)
        var document: JSONObject?
        if overrides.authorization.isEmpty || overrides.token.isEmpty || overrides.jwks.isEmpty || overrides.endSession.isEmpty {
            let url = Self.discoveryURL(issuer: settings.issuer)
            switch await get(url) {
            case .success(let data):
                guard let parsed = JSONObject.parse(data) else { return .failure(.unavailable("discovery at \(url) is not JSON")) }
                // OpenID Connect Discovery §4.3: the document must name the same issuer.
                guard parsed.string("issuer") == settings.issuer else {
                    return .failure(.unavailable("discovery at \(url) names issuer \(parsed.string("issuer") ?? "none"), not \(settings.issuer)"))
                }
                document = parsed
            case .failure(let failure):
                // Discovery may be missing when every endpoint it would give is configured.
                if overrides.authorization.isEmpty || overrides.token.isEmpty || overrides.jwks.isEmpty { return .failure(failure) }
            }
        }
        let endpoints = Self.merge(overrides: overrides, discovery: document)
        if let problem = Self.insecureDiscoveredEndpoint(endpoints, overrides: overrides) { return .failure(.unavailable(problem)) }
        guard !endpoints.authorization.isEmpty, !endpoints.token.isEmpty, !endpoints.jwks.isEmpty else {
            return .failure(.unavailable("the provider's discovery lacks authorization_endpoint, token_endpoint or jwks_uri"))
        }
        state.withLock { cache in
            cache.endpoints = endpoints
            cache.endpointsAt = now
        }
        return .success(endpoints)
    }

    /// The configured endpoints win; discovery fills the rest.
    public static func merge(overrides: ProviderEndpoints, discovery: JSONObject?) -> ProviderEndpoints {
        func pick(_ configured: String, _ key: String) -> String {
            configured.isEmpty ? (discovery?.string(key) ?? "") : configured
        }
        return ProviderEndpoints(
            authorization: pick(overrides.authorization, "authorization_endpoint"), token: pick(overrides.token, "token_endpoint"),
            jwks: pick(overrides.jwks, "jwks_uri"), endSession: pick(overrides.endSession, "end_session_endpoint"))
    }

    /// An endpoint taken from discovery must be https like a configured one (the document
    /// came over TLS, but must not send codes, secrets or browsers to plain http); nil when
    /// all are.
    public static func insecureDiscoveredEndpoint(_ endpoints: ProviderEndpoints, overrides: ProviderEndpoints) -> String? {
        let pairs = [
            ("authorization_endpoint", endpoints.authorization, overrides.authorization), ("token_endpoint", endpoints.token, overrides.token),
            ("jwks_uri", endpoints.jwks, overrides.jwks), ("end_session_endpoint", endpoints.endSession, overrides.endSession),
        ]
        for (name, value, configured) in pairs where configured.isEmpty && !value.isEmpty {
            guard let url = URLComponents(string: value), url.scheme?.lowercased() == "https", url.host?.isEmpty == false,
                  url.fragment == nil else {
                return "discovery gives \(name) \"\(value.prefix(200))\", which is not an https URL"
            }
        }
        return nil
    }

    /// Origins a sign-out form may be redirected to (the provider's end-session page): CSP's
    /// `form-action` also governs where a form's redirects go.
    public var signOutOrigins: [String] {
        let endSession = state.withLock { $0.endpoints?.endSession } ?? settings.endSessionEndpoint
        var origins: [String] = []
        for url in [settings.issuer, endSession] {
            if let origin = Self.origin(of: url), !origins.contains(origin) { origins.append(origin) }
        }
        return origins
    }

    static func origin(of url: String) -> String? {
        guard let parts = URLComponents(string: url), parts.scheme == "https", let host = parts.host, !host.isEmpty,
              host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" || $0 == "[" || $0 == "]" }) else { return nil }
        return "https://\(host)" + (parts.port.map { ":\($0)" } ?? "")
    }

    public static func discoveryURL(issuer: String) -> String {
        var base = issuer
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/.well-known/openid-configuration"
    }

    // MARK: the flow

    /// Where `GET /.actas/oidc/start` sends the browser.
    public func authorizationURL(flow: SignInFlow, redirectURI: String) async -> Result<String, OIDCFailure> {
        switch await endpoints() {
        case .failure(let failure): return .failure(failure)
        case .success(let endpoints):
            return .success(Self.authorizationURL(
                endpoint: endpoints.authorization, clientID: settings.clientID, redirectURI: redirectURI,
                scopes: settings.scopes, flow: flow))
        }
    }

    public static func authorizationURL(endpoint: String, clientID: String, redirectURI: String, scopes: [String], flow: SignInFlow) -> String {
        let query = FormEncoding.encode([
            ("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI),
            ("scope", scopes.joined(separator: " ")), ("state", flow.state), ("nonce", flow.nonce),
            ("code_challenge", flow.codeChallenge), ("code_challenge_method", "S256"),
        ])
        return endpoint + (endpoint.contains("?") ? "&" : "?") + query
    }

    public struct SignedIn: Sendable {
        public var identity: OIDCClaims
        /// Kept server-side for `id_token_hint` at sign-out.
        public var idToken: String
    }

    /// The callback's work after `state` matched: code → tokens → verified ID token → claims.
    public func finish(code: String, flow: SignInFlow, redirectURI: String, now: Date = Date()) async -> Result<SignedIn, OIDCFailure> {
        let endpoints: ProviderEndpoints
        switch await self.endpoints() {
        case .failure(let failure): return .failure(failure)
        case .success(let found): endpoints = found
        }
        let form = FormEncoding.encode([
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", flow.codeVerifier),
        ])
        let answer: (status: UInt, body: Data)
        switch await post(endpoints.token, form: form) {
        case .failure(let failure): return .failure(failure)
        case .success(let got): answer = got
        }
        if answer.status >= 500 { return .failure(.unavailable("token endpoint answered \(answer.status)")) }
        guard answer.status == 200, let tokens = JSONObject.parse(answer.body) else {
            let error = JSONObject.parse(answer.body)?.string("error") ?? "status \(answer.status)"
            return .failure(.token("token endpoint refused the code: \(error.prefix(100))"))
        }
        guard let idToken = tokens.string("id_token"), !idToken.isEmpty else { return .failure(.token("no id_token in the token response")) }
        switch await verify(idToken, kind: .idToken(nonce: flow.nonce), now: now) {
        case .failure(.keysUnavailable): return .failure(.unavailable(TokenVerifier.Failure.keysUnavailable.description))
        case .failure(let failure): return .failure(.idToken(failure.description))
        case .success(let claims):
            switch mapping.map(claims) {
            case .failure(.noRole): return .failure(.noRole)
            case .failure(.noUsername): return .failure(.idToken("no \(settings.usernameClaim) claim"))
            case .success(let identity): return .success(SignedIn(identity: identity, idToken: idToken))
            }
        }
    }

    /// Verifies against the cached JWKS (fetched again after an hour); an unknown `kid`
    /// refetches it, at most once a minute. A token that is not a JWS with an accepted
    /// algorithm is refused before any call to the provider.
    public func verify(_ token: String, kind: TokenVerifier.Kind, now: Date = Date()) async -> Result<JSONObject, TokenVerifier.Failure> {
        guard let jws = CompactJWS(token) else { return .failure(.malformed) }
        if case .failure(let failure) = TokenVerifier.header(of: jws) { return .failure(failure) }
        var keys = state.withLock { $0.keys.fresh(now: now) }
        if keys == nil {
            // The first fetch (and the hourly one) does not count toward the refetch limit.
            keys = await fetchKeys(now: now)
        }
        guard let current = keys else { return .failure(.keysUnavailable) }
        let first = verifier.verify(token, keys: current, kind: kind, now: now)
        guard case .failure(.unknownKey) = first else { return first }
        guard state.withLock({ $0.refetch.allowRefetch(now: now) }), let fresh = await fetchKeys(now: now) else { return first }
        return verifier.verify(token, keys: fresh, kind: kind, now: now)
    }

    /// One fetch at a time; none for a while after one failed.
    private func fetchKeys(now: Date) async -> ProviderKeySet? {
        let fetch: Task<ProviderKeySet?, Never>? = state.withLock { cache in
            if let running = cache.keysFetch { return running }
            guard cache.keys.mayFetch(now: now) else { return nil }
            let task = Task { await self.loadKeys(now: now) }
            cache.keysFetch = task
            return task
        }
        return await fetch?.value
    }

    private func loadKeys(now: Date) async -> ProviderKeySet? {
        var keys: ProviderKeySet?
        if case .success(let endpoints) = await endpoints(), case .success(let data) = await get(endpoints.jwks) {
            keys = ProviderKeySet.parse(data)
        }
        state.withLock { cache in
            cache.keys.record(keys, now: now)
            cache.keysFetch = nil
        }
        return keys
    }

    /// A verified logout token, with the key and time the caller claims in the store so that it
    /// is accepted once on every instance.
    public func verifyLogoutToken(_ token: String, now: Date = Date()) async -> Result<VerifiedLogoutToken, TokenVerifier.Failure> {
        switch await verify(token, kind: .logoutToken, now: now) {
        case .failure(let failure): return .failure(failure)
        case .success(let claims):
            guard let jti = claims.string("jti"), !jti.isEmpty, let exp = claims.number("exp"), let iat = claims.number("iat") else {
                return .failure(.claim("no jti, exp or iat"))
            }
            return .success(VerifiedLogoutToken(
                claims: claims, replayKey: LogoutTokenReplay.key(issuer: settings.issuer, jti: jti),
                keepUntil: LogoutTokenReplay.keepUntil(exp: exp, iat: iat, clockSkew: verifier.clockSkew)))
        }
    }

    /// The provider's sign-out page for this sign-in, when it has one.
    public func endSessionURL(idToken: String, postLogoutRedirect: String) async -> String? {
        guard case .success(let endpoints) = await endpoints(), !endpoints.endSession.isEmpty else { return nil }
        let query = FormEncoding.encode([("id_token_hint", idToken), ("post_logout_redirect_uri", postLogoutRedirect), ("client_id", settings.clientID)])
        return endpoints.endSession + (endpoints.endSession.contains("?") ? "&" : "?") + query
    }

    // MARK: HTTP

    private func get(_ url: String) async -> Result<Data, OIDCFailure> {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        switch await send(request) {
        case .failure(let failure): return .failure(failure)
        case .success(let (status, body)):
            guard status == 200 else { return .failure(.unavailable("\(url) answered \(status)")) }
            return .success(body)
        }
    }

    private func post(_ url: String, form: String) async -> Result<(status: UInt, body: Data), OIDCFailure> {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        // RFC 6749 §2.3.1: client_secret_basic, each part form-encoded first.
        let credentials = FormEncoding.component(settings.clientID) + ":" + FormEncoding.component(settings.clientSecret)
        request.headers.add(name: "Authorization", value: "Basic " + Data(credentials.utf8).base64EncodedString())
        request.body = .bytes(ByteBuffer(string: form))
        return await send(request)
    }

    private func send(_ request: HTTPClientRequest) async -> Result<(status: UInt, body: Data), OIDCFailure> {
        do {
            let response = try await client.execute(request, deadline: .now() + Self.deadline)
            let body = try await response.body.collect(upTo: Self.maxBody)
            return .success((response.status.code, Data(body.readableBytesView)))
        } catch {
            return .failure(.unavailable("\(request.url): \(error)"))
        }
    }
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5.2).
public enum FormEncoding {
    public static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { component($0.0) + "=" + component($0.1) }.joined(separator: "&")
    }

    public static func component(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "*"):
                out.append(Character(Unicode.Scalar(byte)))
            case UInt8(ascii: " "):
                out.append("+")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
