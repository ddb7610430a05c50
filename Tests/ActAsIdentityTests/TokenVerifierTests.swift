import ActAsConfig
import ActAsCrypto
import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import ActAsIdentity

/// ID-token and logout-token verification (SPEC §10.3) without a provider: keys made here.
struct TokenVerifierTests {
    static let issuer = "https://idp.example.com/realms/acme"
    static let clientID = "actas"
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    let ec = P256.Signing.PrivateKey()
    let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    var keys: ProviderKeySet {
        ProviderKeySet(keys: [
            ProviderKey(kid: "ec", alg: "ES256", material: .p256(ec.publicKey)),
            ProviderKey(kid: "rsa", alg: nil, material: .rsa(rsa.publicKey)),
        ])
    }

    var verifier: TokenVerifier { TokenVerifier(issuer: Self.issuer, clientID: Self.clientID, clockSkew: 60) }

    func claims(_ changes: [String: Any] = [:], removing: [String] = []) -> [String: Any] {
        let time = Int(Self.now.timeIntervalSince1970)
        var claims: [String: Any] = ["iss": Self.issuer, "aud": Self.clientID, "sub": "u1", "iat": time, "exp": time + 300, "nonce": "n1"]
        for (key, value) in changes { claims[key] = value }
        for key in removing { claims[key] = nil }
        return claims
    }

    func token(_ claims: [String: Any], header: [String: Any], sign: (Data) -> Data) -> String {
        let head = Base64URL.encode(try! JSONSerialization.data(withJSONObject: header))
        let body = Base64URL.encode(try! JSONSerialization.data(withJSONObject: claims))
        let input = Data("\(head).\(body)".utf8)
        return "\(head).\(body).\(Base64URL.encode(sign(input)))"
    }

    func es256(_ claims: [String: Any], kid: String? = "ec") -> String {
        var header: [String: Any] = ["alg": "ES256", "typ": "JWT"]
        if let kid { header["kid"] = kid }
        return token(claims, header: header) { try! ec.signature(for: $0).rawRepresentation }
    }

    func rsaToken(_ claims: [String: Any], alg: String) -> String {
        token(claims, header: ["alg": alg, "kid": "rsa"]) { input in
            try! rsa.signature(for: input, padding: alg == "PS256" ? .PSS : .insecurePKCS1v1_5).rawRepresentation
        }
    }

    func check(_ token: String, kind: TokenVerifier.Kind = .idToken(nonce: "n1")) -> Result<JSONObject, TokenVerifier.Failure> {
        verifier.verify(token, keys: keys, kind: kind, now: Self.now)
    }

    @Test func acceptsTheThreeAllowedAlgorithms() throws {
        for token in [es256(claims()), rsaToken(claims(), alg: "RS256"), rsaToken(claims(), alg: "PS256")] {
            let verified = try check(token).get()
            #expect(verified.string("sub") == "u1")
        }
    }

    @Test func refusesNoneAndHMACKeyedWithThePublicKey() {
        let none = token(claims(), header: ["alg": "none"]) { _ in Data() }
        #expect(check(none) == .failure(.algorithm("none")))
        let publicKey = Data(rsa.publicKey.pemRepresentation.utf8)
        let hs = token(claims(), header: ["alg": "HS256", "kid": "rsa"]) {
            Data(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: publicKey)))
        }
        #expect(check(hs) == .failure(.algorithm("HS256")))
        // An RSA key cannot check an ES256 token, even with the right kid.
        let mismatched = token(claims(), header: ["alg": "ES256", "kid": "rsa"]) { try! ec.signature(for: $0).rawRepresentation }
        #expect(check(mismatched) == .failure(.algorithm("ES256")))
    }

    @Test func unknownOrMissingKidNeverFallsBackToAnotherKey() {
        #expect(check(es256(claims(), kid: "other")) == .failure(.unknownKey("other")))
        #expect(check(es256(claims(), kid: nil)) == .failure(.unknownKey(nil)))
    }

    @Test func noKidUsesTheOnlyKeyOfASetOfOne() {
        let only = ProviderKeySet(keys: [ProviderKey(kid: "ec", alg: "ES256", material: .p256(ec.publicKey))])
        #expect((try? verifier.verify(es256(claims(), kid: nil), keys: only, kind: .idToken(nonce: "n1"), now: Self.now).get()) != nil)
        // Not when the only key cannot check that algorithm, nor when the token names another kid.
        let rsaOnly = ProviderKeySet(keys: [ProviderKey(kid: "rsa", alg: nil, material: .rsa(rsa.publicKey))])
        #expect(verifier.verify(es256(claims(), kid: nil), keys: rsaOnly, kind: .idToken(nonce: "n1"), now: Self.now) == .failure(.unknownKey(nil)))
        #expect(verifier.verify(es256(claims(), kid: "other"), keys: only, kind: .idToken(nonce: "n1"), now: Self.now) == .failure(.unknownKey("other")))
    }

    @Test func badSignatureIsRefused() {
        var token = es256(claims())
        token.removeLast(2)
        token += "AA"
        #expect(check(token) == .failure(.signature))
    }

    @Test(arguments: [
        (["iss": "https://evil.example"], "iss"),
        (["aud": "other"], "aud"),
        (["aud": ["actas", "other"], "azp": "other"], "azp"),
        (["exp": 1_800_000_000 - 61], "expired"),
        (["iat": 1_800_000_000 + 61], "future"),
        (["nbf": 1_800_000_000 + 61], "nbf"),
        (["nonce": "n2"], "nonce"),
    ] as [([String: any Sendable], String)])
    func refusesWrongClaims(change: [String: any Sendable], mentions: String) {
        guard case .failure(.claim(let why)) = check(es256(claims(change))) else {
            Issue.record("accepted \(change)")
            return
        }
        #expect(why.contains(mentions))
    }

    @Test func clockSkewIsHonoured() throws {
        _ = try check(es256(claims(["exp": 1_800_000_000 - 59, "iat": 1_800_000_000 + 59, "nbf": 1_800_000_000 + 59]))).get()
        _ = try check(es256(claims(["aud": ["actas", "other"], "azp": "actas"]))).get()
        _ = try check(es256(claims(["aud": ["other", "actas"]]))).get()
    }

    @Test func idTokenNeedsTheNonce() {
        guard case .failure(.claim) = check(es256(claims(removing: ["nonce"]))) else { Issue.record("no nonce accepted"); return }
        guard case .failure(.claim) = check(es256(claims()), kind: .idToken(nonce: "")) else { Issue.record("empty nonce accepted"); return }
    }

    @Test func logoutTokenRules() throws {
        let event = ["http://schemas.openid.net/event/backchannel-logout": [String: String]()]
        let good = claims(["events": event, "sid": "s1", "jti": "j1"], removing: ["nonce"])
        _ = try check(es256(good), kind: .logoutToken).get()
        var noExp = good
        noExp["exp"] = nil
        var noJti = good
        noJti["jti"] = nil
        var emptyJti = good
        emptyJti["jti"] = ""
        var old = good
        old["iat"] = Int(Self.now.timeIntervalSince1970) - 3600
        var withNonce = good
        withNonce["nonce"] = "n"
        var noEvent = good
        noEvent["events"] = [String: String]()
        var noSubject = good
        noSubject["sid"] = nil
        noSubject["sub"] = nil
        for bad in [withNonce, noEvent, noSubject, noExp, noJti, emptyJti, old] {
            guard case .failure(.claim) = check(es256(bad), kind: .logoutToken) else { Issue.record("accepted \(bad)"); continue }
        }
    }
}

struct LogoutTokenReplayTests {
    @Test func keptUntilExpOrIatPlusMaxAgeWhicheverIsSooner() {
        #expect(LogoutTokenReplay.keepUntil(exp: 1100, iat: 1000, clockSkew: 60) == Date(timeIntervalSince1970: 1160))
        #expect(LogoutTokenReplay.keepUntil(exp: 5000, iat: 1000, clockSkew: 60) == Date(timeIntervalSince1970: 1000 + 600 + 60))
    }

    @Test func keyIsPerIssuerAndFixedLength() {
        let key = LogoutTokenReplay.key(issuer: "https://a", jti: "j1")
        #expect(key.count == 64 && key == LogoutTokenReplay.key(issuer: "https://a", jti: "j1"))
        #expect(key != LogoutTokenReplay.key(issuer: "https://b", jti: "j1"))
        // No ambiguity from where the issuer ends and the jti begins.
        #expect(LogoutTokenReplay.key(issuer: "https://a", jti: "bc") != LogoutTokenReplay.key(issuer: "https://ab", jti: "c"))
        #expect(LogoutTokenReplay.key(issuer: "x", jti: String(repeating: "j", count: 10_000)).count == 64)
    }
}

struct JWKSRefetchPolicyTests {
    @Test func atMostOnceAMinute() {
        var policy = JWKSRefetchPolicy()
        let start = Date(timeIntervalSince1970: 1000)
        let answers = [0, 59, 60, 61].map { policy.allowRefetch(now: start.addingTimeInterval(TimeInterval($0))) }
        #expect(answers == [true, false, true, false])
    }

    @Test func keySetParsingSkipsEncryptionKeysAndOtherCurves() throws {
        let ec = P256.Signing.PrivateKey().publicKey.x963Representation
        let x = Base64URL.encode(ec[1..<33]), y = Base64URL.encode(ec[33..<65])
        let json = """
            {"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"\(x)","y":"\(y)"},
                     {"kty":"EC","crv":"P-256","kid":"b","use":"enc","x":"\(x)","y":"\(y)"},
                     {"kty":"EC","crv":"P-384","kid":"c","x":"\(x)","y":"\(y)"},
                     {"kty":"oct","kid":"d","k":"c2VjcmV0"}]}
            """
        let set = try #require(ProviderKeySet.parse(Data(json.utf8)))
        #expect(set.keys.map(\.kid) == ["a"])
    }
}

struct KeySetCacheTests {
    let start = Date(timeIntervalSince1970: 1000)
    let set = ProviderKeySet(keys: [])

    @Test func keysAgeOutAfterAnHour() {
        var cache = KeySetCache()
        #expect(cache.fresh(now: start) == nil)
        cache.record(set, now: start)
        #expect(cache.fresh(now: start.addingTimeInterval(3599)) != nil)
        #expect(cache.fresh(now: start.addingTimeInterval(3600)) == nil)
    }

    @Test func aFailedFetchPausesFetching() {
        var cache = KeySetCache()
        cache.record(nil, now: start)
        #expect(!cache.mayFetch(now: start.addingTimeInterval(KeySetCache.failurePause - 1)))
        #expect(cache.mayFetch(now: start.addingTimeInterval(KeySetCache.failurePause)))
        cache.record(set, now: start.addingTimeInterval(10))
        #expect(cache.mayFetch(now: start.addingTimeInterval(10)))
    }
}

/// A token that is not a JWS with an accepted algorithm costs no call to the provider: the
/// provider here cannot be reached, and the answer is about the token, not the keys.
struct ProviderVerifyTests {
    @Test func garbageIsRefusedBeforeAnyFetch() async {
        let provider = try! OIDCProvider(
            settings: ActAsConfig.OIDC(issuer: "https://127.0.0.1:1", clientID: "c", clientSecret: "s"), roleOrder: ["employee"])
        let garbage = await provider.verify("not-a-jwt", kind: .logoutToken)
        let none = await provider.verify(
            Base64URL.encode(Data(#"{"alg":"none"}"#.utf8)) + "." + Base64URL.encode(Data("{}".utf8)) + ".", kind: .logoutToken)
        await provider.shutdown()
        #expect(garbage == .failure(.malformed))
        #expect(none == .failure(.algorithm("none")))
    }
}
