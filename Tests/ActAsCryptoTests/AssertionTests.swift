import Crypto
import Foundation
import Testing
@testable import ActAsCrypto

private func claims(actor: AssertionClaims.Actor? = nil, sessionID: String? = nil, mode: String? = nil) -> AssertionClaims {
    AssertionClaims(
        issuer: "https://app.example.com", audience: "http://127.0.0.1:9000/", subject: "usr_jdoe", username: "jdoe",
        email: "jdoe@example.com", groups: ["sales", "emea"], role: "employee", issuedAt: 1_800_000_000,
        expiresAt: 1_800_000_300, jwtID: "jti-1", actor: actor, sessionID: sessionID, mode: mode)
}

private let admin = AssertionClaims.Actor(subject: "usr_admin", username: "admin", email: "admin@example.com")

private func segments(_ token: String) -> [String] {
    token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
}

private func object(_ segment: String) throws -> [String: Any] {
    let data = try #require(Base64URL.decode(segment))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// A base64url member of a JWK, decoded.
private func member(_ jwk: [String: Any], _ name: String) throws -> Data {
    let text = try #require(jwk[name] as? String)
    return try #require(Base64URL.decode(text))
}

/// RFC 7517 Appendix A.2: a published P-256 private key (`d` = 870MB6gf…).
private let rfcPrivateKey = Data([
    0xf3, 0xbd, 0x0c, 0x07, 0xa8, 0x1f, 0xb9, 0x32, 0x78, 0x1e, 0xd5, 0x27, 0x52, 0xf6, 0x0c, 0xc8,
    0x9a, 0x6b, 0xe5, 0xe5, 0x19, 0x34, 0xfe, 0x01, 0x93, 0x8d, 0xdb, 0x55, 0xd8, 0xf7, 0x78, 0x01,
])

@Suite("Assertion JWTs and the key ring")
struct AssertionTests {
    @Test func signThenVerify() throws {
        let key = AssertionKey.generate().key
        let token = try AssertionSigner.sign(claims(), with: key)
        let payload = try #require(AssertionSigner.verify(token, keys: [key]))
        #expect(payload["iss"] as? String == "https://app.example.com")
        #expect(payload["aud"] as? String == "http://127.0.0.1:9000/")
        #expect(payload["sub"] as? String == "usr_jdoe")
        #expect(payload["preferred_username"] as? String == "jdoe")
        #expect(payload["email"] as? String == "jdoe@example.com")
        #expect(payload["groups"] as? [String] == ["sales", "emea"])
        #expect(payload["role"] as? String == "employee")
        #expect((payload["iat"] as? NSNumber)?.int64Value == 1_800_000_000)
        #expect((payload["exp"] as? NSNumber)?.int64Value == 1_800_000_300)
        #expect(payload["jti"] as? String == "jti-1")
    }

    @Test func headerIsES256WithKid() throws {
        let key = AssertionKey.generate().key
        let token = try AssertionSigner.sign(claims(), with: key)
        let parts = segments(token)
        #expect(parts.count == 3)
        let header = try object(parts[0])
        #expect(header["alg"] as? String == "ES256")
        #expect(header["kid"] as? String == key.kid)
        #expect(header["typ"] as? String == "JWT")
        #expect(Set(header.keys) == ["alg", "kid", "typ"])
        #expect(!token.contains("="))
    }

    /// JWS ES256 is the raw r ‖ s (RFC 7518 §3.4), not DER; check it with swift-crypto directly.
    @Test func signatureIsRaw64BytesAndVerifiesIndependently() throws {
        let key = AssertionKey.generate().key
        let token = try AssertionSigner.sign(claims(), with: key)
        let parts = segments(token)
        let signature = try #require(Base64URL.decode(parts[2]))
        #expect(signature.count == 64)
        #expect(parts[2].count == 86)
        let ecdsa = try P256.Signing.ECDSASignature(rawRepresentation: signature)
        #expect(key.publicKey.isValidSignature(ecdsa, for: Array("\(parts[0]).\(parts[1])".utf8)))
    }

    @Test func payloadUsesPlainSlashes() throws {
        let token = try AssertionSigner.sign(claims(), with: AssertionKey.generate().key)
        let payloadBytes = try #require(Base64URL.decode(segments(token)[1]))
        let payload = String(decoding: payloadBytes, as: UTF8.self)
        #expect(payload.contains("\"https://app.example.com\""))
        #expect(!payload.contains("\\/"))
    }

    @Test func tamperedPayloadFails() throws {
        let key = AssertionKey.generate().key
        let token = try AssertionSigner.sign(claims(), with: key)
        var parts = segments(token)
        var payload = try object(parts[1])
        payload["sub"] = "usr_admin"
        parts[1] = Base64URL.encode(try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]))
        #expect(AssertionSigner.verify(parts.joined(separator: "."), keys: [key]) == nil)
        // The payload of another valid token, with this token's signature.
        let other = segments(try AssertionSigner.sign(claims(mode: "read-only"), with: key))
        #expect(AssertionSigner.verify([parts[0], other[1], segments(token)[2]].joined(separator: "."), keys: [key]) == nil)
    }

    @Test func tamperedSignatureFails() throws {
        let key = AssertionKey.generate().key
        let token = try AssertionSigner.sign(claims(), with: key)
        var parts = segments(token)
        for index in [0, 31, 32, 63] {
            var signature = Array(try #require(Base64URL.decode(parts[2])))
            signature[index] ^= 0x01
            parts[2] = Base64URL.encode(signature)
            #expect(AssertionSigner.verify(parts.joined(separator: "."), keys: [key]) == nil)
        }
        let good = segments(token)
        #expect(AssertionSigner.verify(good[0] + "." + good[1] + ".", keys: [key]) == nil)
        #expect(AssertionSigner.verify(good[0] + "." + good[1] + "." + good[2].dropLast(2), keys: [key]) == nil)
    }

    @Test func wrongOrUnknownKidFails() throws {
        let key = AssertionKey.generate().key
        let other = AssertionKey.generate().key
        let token = try AssertionSigner.sign(claims(), with: key)
        #expect(AssertionSigner.verify(token, keys: [other]) == nil)
        #expect(AssertionSigner.verify(token, keys: []) == nil)
        #expect(AssertionSigner.verify(token, keys: [other, key]) != nil)
        // Header claiming the other key's kid: the signature is checked with that key and fails.
        var parts = segments(token)
        parts[0] = Base64URL.encode(Array("{\"alg\":\"ES256\",\"kid\":\"\(other.kid)\",\"typ\":\"JWT\"}".utf8))
        #expect(AssertionSigner.verify(parts.joined(separator: "."), keys: [key, other]) == nil)
    }

    @Test func algorithmConfusionFails() throws {
        let key = AssertionKey.generate().key
        let parts = segments(try AssertionSigner.sign(claims(), with: key))
        for alg in ["none", "HS256", "es256", "ES384", ""] {
            let header = Base64URL.encode(Array("{\"alg\":\"\(alg)\",\"kid\":\"\(key.kid)\"}".utf8))
            #expect(AssertionSigner.verify([header, parts[1], parts[2]].joined(separator: "."), keys: [key]) == nil)
            #expect(AssertionSigner.verify([header, parts[1], ""].joined(separator: "."), keys: [key]) == nil)
        }
    }

    @Test(arguments: ["", ".", "..", "a.b", "a.b.c.d", "a.b.c", "....", "\u{0}.\u{0}.\u{0}"])
    func garbageTokensFail(token: String) {
        #expect(AssertionSigner.verify(token, keys: [AssertionKey.generate().key]) == nil)
    }

    @Test func actorClaimsOnlyWhenImpersonating() throws {
        let key = AssertionKey.generate().key
        let plain = try #require(AssertionSigner.verify(try AssertionSigner.sign(claims(), with: key), keys: [key]))
        #expect(Set(plain.keys) == ["iss", "aud", "sub", "preferred_username", "email", "groups", "role", "iat", "exp", "jti"])

        let acting = try #require(AssertionSigner.verify(
            try AssertionSigner.sign(claims(actor: admin, sessionID: "imp_abc", mode: "read-only"), with: key), keys: [key]))
        #expect(Set(acting.keys) == ["iss", "aud", "sub", "preferred_username", "email", "groups", "role", "iat", "exp", "jti", "act", "sid", "mode"])
        let act = try #require(acting["act"] as? [String: Any])
        #expect(Set(act.keys) == ["sub", "preferred_username", "email"])
        #expect(act["sub"] as? String == "usr_admin")
        #expect(act["preferred_username"] as? String == "admin")
        #expect(act["email"] as? String == "admin@example.com")
        #expect(act.values.allSatisfy { $0 is String })  // never nested
        #expect(acting["sid"] as? String == "imp_abc")
        #expect(acting["mode"] as? String == "read-only")
        #expect(acting["sub"] as? String == "usr_jdoe")
    }

    @Test func hostileClaimValuesStayStrings() throws {
        let key = AssertionKey.generate().key
        var hostile = claims()
        hostile.username = "\"},\"role\":\"owner"
        hostile.email = "a\u{0}b\n\u{2028}"
        hostile.groups = ["x\",\"admin"]
        let payload = try #require(AssertionSigner.verify(try AssertionSigner.sign(hostile, with: key), keys: [key]))
        #expect(payload["preferred_username"] as? String == hostile.username)
        #expect(payload["email"] as? String == hostile.email)
        #expect(payload["groups"] as? [String] == hostile.groups)
        #expect(payload["role"] as? String == "employee")
    }

    // MARK: keys

    /// The kid is the RFC 7638 thumbprint, checked against a value computed outside Swift
    /// (SHA-256 of `{"crv":"P-256","kty":"EC","x":…,"y":…}` for the RFC 7517 A.1/A.2 key).
    @Test func kidIsTheRFC7638ThumbprintOfAKnownKey() throws {
        let key = try AssertionKey(rawPrivateKey: rfcPrivateKey)
        #expect(key.jwk["x"] == "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4")
        #expect(key.jwk["y"] == "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM")
        #expect(key.kid == "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s")
        #expect(key.jwk["kid"] == key.kid)
    }

    /// The same for random keys, with the canonical JSON built by JSONSerialization from the
    /// x9.63 point rather than the raw representation.
    @Test func kidIsTheThumbprintOfRandomKeys() throws {
        for _ in 0..<20 {
            let (raw, key) = AssertionKey.generate()
            #expect(raw.count == 32)
            let point = Array(key.publicKey.x963Representation)
            #expect(point.count == 65 && point[0] == 0x04)
            let members = ["crv": "P-256", "kty": "EC", "x": Base64URL.encode(point[1...32]), "y": Base64URL.encode(point[33...64])]
            let canonical = try JSONSerialization.data(withJSONObject: members, options: [.sortedKeys, .withoutEscapingSlashes])
            #expect(key.kid == Base64URL.encode(SHA256.hash(data: canonical)))
            #expect(key.kid.count == 43)
            #expect(try AssertionKey(rawPrivateKey: raw).kid == key.kid)
        }
    }

    @Test func badRawKeysThrow() {
        #expect(throws: (any Error).self) { try AssertionKey(rawPrivateKey: Data()) }
        #expect(throws: (any Error).self) { try AssertionKey(rawPrivateKey: Data(repeating: 0, count: 32)) }
        #expect(throws: (any Error).self) { try AssertionKey(rawPrivateKey: Data(repeating: 1, count: 31)) }
        #expect(throws: (any Error).self) { try AssertionKey(rawPrivateKey: Data(repeating: 0xFF, count: 32)) }  // ≥ n
    }

    @Test func jwksPublishesCurrentAndPreviousKeysWithoutPrivateParts() throws {
        let current = AssertionKey.generate().key
        let previous = AssertionKey.generate().key
        let ring = KeyRing(signing: current, published: [previous, current])
        #expect(ring.published.map(\.kid) == [current.kid, previous.kid])
        #expect(ring.signing.kid == current.kid)

        let jwks = try #require(try JSONSerialization.jsonObject(with: Data(ring.jwksJSON)) as? [String: Any])
        #expect(Set(jwks.keys) == ["keys"])
        let keys = try #require(jwks["keys"] as? [[String: Any]])
        #expect(keys.count == 2)
        #expect(keys.compactMap { $0["kid"] as? String } == [current.kid, previous.kid])
        for jwk in keys {
            #expect(Set(jwk.keys) == ["kty", "crv", "x", "y", "kid", "use", "alg"])  // no "d"
            #expect(jwk["kty"] as? String == "EC")
            #expect(jwk["crv"] as? String == "P-256")
            #expect(jwk["alg"] as? String == "ES256")
            #expect(jwk["use"] as? String == "sig")
            let x = try member(jwk, "x"), y = try member(jwk, "y")
            #expect(x.count == 32 && y.count == 32)
        }
        let text = String(decoding: ring.jwksJSON, as: UTF8.self)
        #expect(!text.contains("\"d\""))
    }

    /// A relying party that only has the JWKS can verify: rebuild the key from x and y.
    @Test func tokensVerifyFromTheJWKSAlone() throws {
        let current = AssertionKey.generate().key
        let ring = KeyRing(signing: current, published: [AssertionKey.generate().key])
        let token = try AssertionSigner.sign(claims(), with: ring.signing)
        let parts = segments(token)
        let kid = try object(parts[0])["kid"] as? String
        let jwks = try #require(try JSONSerialization.jsonObject(with: Data(ring.jwksJSON)) as? [String: Any])
        let jwk = try #require((jwks["keys"] as? [[String: Any]])?.first { $0["kid"] as? String == kid })
        let x = try member(jwk, "x"), y = try member(jwk, "y")
        let publicKey = try P256.Signing.PublicKey(x963Representation: Data([0x04]) + x + y)
        let signatureBytes = try #require(Base64URL.decode(parts[2]))
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: signatureBytes)
        #expect(publicKey.isValidSignature(signature, for: Array("\(parts[0]).\(parts[1])".utf8)))
    }

    @Test func ringWithOnlyTheSigningKey() throws {
        let key = AssertionKey.generate().key
        let ring = KeyRing(signing: key, published: [])
        #expect(ring.published.map(\.kid) == [key.kid])
        let jwks = try #require(try JSONSerialization.jsonObject(with: Data(ring.jwksJSON)) as? [String: Any])
        #expect((jwks["keys"] as? [Any])?.count == 1)
    }
}
