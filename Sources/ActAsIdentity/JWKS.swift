import ActAsCrypto
import Crypto
import _CryptoExtras
import Foundation

/// The algorithms an ID token or logout token may use (SPEC §10.3). Never `none`, never HS*:
/// an HMAC "signed" with the provider's public key would otherwise verify.
public enum SigningAlgorithm: String, Sendable, CaseIterable {
    case rs256 = "RS256"
    case es256 = "ES256"
    case ps256 = "PS256"
}

/// One verification key from the provider's JWKS.
public struct ProviderKey: Sendable {
    public enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
    }

    public let kid: String?
    /// The JWK's own `alg`, when it names one: the key is then only for that algorithm.
    public let alg: String?
    public let material: Material

    /// Whether this key may check a signature made with `algorithm`.
    public func fits(_ algorithm: SigningAlgorithm) -> Bool {
        if let alg, alg != algorithm.rawValue { return false }
        switch (material, algorithm) {
        case (.rsa, .rs256), (.rsa, .ps256), (.p256, .es256): return true
        default: return false
        }
    }

    public func verify(_ signature: Data, over input: Data, algorithm: SigningAlgorithm) -> Bool {
        switch (material, algorithm) {
        case (.rsa(let key), .rs256):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: input, padding: .insecurePKCS1v1_5)
        case (.rsa(let key), .ps256):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: input, padding: .PSS)
        case (.p256(let key), .es256):
            guard signature.count == 64, let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: input)
        default:
            return false
        }
    }
}

/// A provider's key set, parsed. Keys that are not for signatures, or of a kind ActAs does not
/// accept, are left out rather than failing the whole set.
public struct ProviderKeySet: Sendable {
    public let keys: [ProviderKey]

    public init(keys: [ProviderKey]) { self.keys = keys }

    public static func parse(_ data: Data) -> ProviderKeySet? {
        guard let object = JSONObject.parse(data), let entries = object["keys"]?.array else { return nil }
        var keys: [ProviderKey] = []
        for entry in entries {
            if let jwk = entry.object, let key = parseKey(jwk) { keys.append(key) }
        }
        return ProviderKeySet(keys: keys)
    }

    static func parseKey(_ jwk: JSONObject) -> ProviderKey? {
        if let use = jwk.string("use"), use != "sig" { return nil }
        let kid = jwk.string("kid")
        let alg = jwk.string("alg")
        switch jwk.string("kty") {
        case "RSA":
            guard let n = jwk.string("n").flatMap(Base64URL.decode), let e = jwk.string("e").flatMap(Base64URL.decode),
                  let key = try? _RSA.Signing.PublicKey(n: n, e: e) else { return nil }
            return ProviderKey(kid: kid, alg: alg, material: .rsa(key))
        case "EC":
            guard jwk.string("crv") == "P-256", let x = jwk.string("x").flatMap(Base64URL.decode),
                  let y = jwk.string("y").flatMap(Base64URL.decode), x.count == 32, y.count == 32,
                  let key = try? P256.Signing.PublicKey(x963Representation: [0x04] + x + y) else { return nil }
            return ProviderKey(kid: kid, alg: alg, material: .p256(key))
        default:
            return nil
        }
    }

    /// The keys a token with this `kid` may be checked against: the same `kid` only. A token
    /// without `kid` matches keys without one, or the set's only key: OpenID Connect Core
    /// §10.1 requires a `kid` only when the set holds several keys (oidc-provider-mock, for
    /// one, sends none). Never "the first key" of several.
    public func candidates(kid: String?, algorithm: SigningAlgorithm) -> [ProviderKey] {
        let same = keys.filter { $0.kid == kid && $0.fits(algorithm) }
        if kid == nil, same.isEmpty, keys.count == 1, keys[0].fits(algorithm) { return keys }
        return same
    }

    public func knows(kid: String?) -> Bool { keys.contains { $0.kid == kid } }
}

/// SPEC §10.3: on an unknown `kid` the JWKS is fetched again at most once a minute; the first
/// fetch does not count.
public struct JWKSRefetchPolicy: Sendable {
    public static let interval: TimeInterval = 60
    public private(set) var lastRefetch: Date?

    public init(lastRefetch: Date? = nil) { self.lastRefetch = lastRefetch }

    /// Whether an unknown `kid` may trigger a fetch now; records it when it may.
    public mutating func allowRefetch(now: Date) -> Bool {
        if let lastRefetch, now.timeIntervalSince(lastRefetch) < Self.interval { return false }
        lastRefetch = now
        return true
    }
}
