import Foundation

/// What an ID token or a back-channel logout token must satisfy (SPEC §10.3). Pure: the keys
/// and the clock are inputs.
public struct TokenVerifier: Sendable {
    public enum Kind: Sendable, Equatable {
        /// `nonce` must equal the one this browser's sign-in started with.
        case idToken(nonce: String)
        /// The back-channel logout event, no `nonce`, and `sid` or `sub`.
        case logoutToken
    }

    public enum Failure: Error, Sendable, Equatable {
        case malformed
        case algorithm(String)
        /// No key with this `kid` (the caller may refetch the JWKS once and try again).
        case unknownKey(String?)
        case signature
        case claim(String)
        /// The provider's JWKS could not be fetched: nothing was checked.
        case keysUnavailable

        public var description: String {
            switch self {
            case .malformed: return "the token is not a well-formed JWS"
            case .algorithm(let alg): return "algorithm \(alg) is not accepted"
            case .unknownKey(let kid): return "no key \(kid ?? "without kid") in the provider's JWKS"
            case .signature: return "bad signature"
            case .claim(let why): return why
            case .keysUnavailable: return "the provider's JWKS could not be fetched"
            }
        }
    }

    public static let backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

    public var issuer: String
    public var clientID: String
    public var clockSkew: TimeInterval

    public init(issuer: String, clientID: String, clockSkew: TimeInterval) {
        self.issuer = issuer
        self.clientID = clientID
        self.clockSkew = clockSkew
    }

    /// The header's algorithm and key id, checked against the allow-list before any key is used.
    public static func header(of jws: CompactJWS) -> Result<(SigningAlgorithm, String?), Failure> {
        let alg = jws.header.string("alg") ?? "none"
        guard let algorithm = SigningAlgorithm(rawValue: alg) else { return .failure(.algorithm(alg)) }
        // A critical extension we do not understand must not be ignored (RFC 7515 §4.1.11).
        if jws.header["crit"] != nil { return .failure(.malformed) }
        return .success((algorithm, jws.header.string("kid")))
    }

    public func verify(_ token: String, keys: ProviderKeySet, kind: Kind, now: Date) -> Result<JSONObject, Failure> {
        guard let jws = CompactJWS(token) else { return .failure(.malformed) }
        let algorithm: SigningAlgorithm, kid: String?
        switch Self.header(of: jws) {
        case .success(let (a, k)): (algorithm, kid) = (a, k)
        case .failure(let failure): return .failure(failure)
        }
        let candidates = keys.candidates(kid: kid, algorithm: algorithm)
        if candidates.isEmpty { return .failure(keys.knows(kid: kid) ? .algorithm(algorithm.rawValue) : .unknownKey(kid)) }
        guard candidates.contains(where: { $0.verify(jws.signature, over: jws.signingInput, algorithm: algorithm) }) else {
            return .failure(.signature)
        }
        if let problem = claimsProblem(jws.payload, kind: kind, now: now) { return .failure(.claim(problem)) }
        return .success(jws.payload)
    }

    /// The first claim that is wrong, or nil.
    public func claimsProblem(_ claims: JSONObject, kind: Kind, now: Date) -> String? {
        guard claims.string("iss") == issuer else { return "iss is not \(issuer)" }
        let audiences = claims.strings("aud")
        guard audiences.contains(clientID) else { return "aud does not contain \(clientID)" }
        // SPEC §10.3: azp equals client_id when present (several audiences without azp pass).
        if let azp = claims["azp"], azp.string != clientID { return "azp is not \(clientID)" }
        let time = now.timeIntervalSince1970
        guard let iat = claims.number("iat") else { return "no iat" }
        if iat > time + clockSkew { return "iat is in the future" }
        if let nbf = claims["nbf"] {
            guard let nbf = nbf.number, nbf <= time + clockSkew else { return "not valid yet (nbf)" }
        }
        switch kind {
        case .idToken(let nonce):
            guard let exp = claims.number("exp") else { return "no exp" }
            if exp <= time - clockSkew { return "expired" }
            guard let sub = claims.string("sub"), !sub.isEmpty else { return "no sub" }
            guard let sent = claims.string("nonce"), !nonce.isEmpty, sent == nonce else { return "nonce does not match" }
        case .logoutToken:
            // Back-Channel Logout 1.0 §2.4 only recommends exp; it is required here, and iat
            // bounded, so a seen jti need be remembered only for a while (LogoutTokenReplay).
            guard let exp = claims.number("exp") else { return "no exp" }
            if exp <= time - clockSkew { return "expired" }
            if iat < time - LogoutTokenReplay.maxAge - clockSkew { return "issued too long ago (iat)" }
            guard let jti = claims.string("jti"), !jti.isEmpty else { return "no jti" }
            if claims["nonce"] != nil { return "a logout token must not carry nonce" }
            guard let events = claims["events"]?.object, events[Self.backchannelLogoutEvent]?.object != nil else {
                return "no back-channel logout event"
            }
            let sid = claims.string("sid") ?? "", sub = claims.string("sub") ?? ""
            if sid.isEmpty && sub.isEmpty { return "neither sid nor sub" }
        }
        return nil
    }
}
