import Crypto
import Foundation

/// The claims of `X-ActAs-Jwt-Assertion` (SPEC §5). `sub` and `act.sub` are user ids.
public struct AssertionClaims: Sendable, Equatable {
    /// RFC 8693 §4.1 actor: the administrator behind an impersonated request. Never nested.
    public struct Actor: Sendable, Equatable {
        public var subject: String
        public var username: String
        public var email: String

        public init(subject: String, username: String, email: String) {
            self.subject = subject
            self.username = username
            self.email = email
        }
    }

    public var issuer: String
    public var audience: String
    public var subject: String
    public var username: String
    public var email: String
    public var groups: [String]
    public var role: String
    public var issuedAt: Int64
    public var expiresAt: Int64
    public var jwtID: String
    public var actor: Actor?
    public var sessionID: String?
    public var mode: String?

    public init(
        issuer: String, audience: String, subject: String, username: String, email: String, groups: [String],
        role: String, issuedAt: Int64, expiresAt: Int64, jwtID: String, actor: Actor? = nil,
        sessionID: String? = nil, mode: String? = nil
    ) {
        self.issuer = issuer
        self.audience = audience
        self.subject = subject
        self.username = username
        self.email = email
        self.groups = groups
        self.role = role
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.jwtID = jwtID
        self.actor = actor
        self.sessionID = sessionID
        self.mode = mode
    }

    var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "iss": issuer, "aud": audience, "sub": subject, "preferred_username": username, "email": email,
            "groups": groups, "role": role, "iat": issuedAt, "exp": expiresAt, "jti": jwtID,
        ]
        if let actor {
            object["act"] = ["sub": actor.subject, "preferred_username": actor.username, "email": actor.email]
        }
        if let sessionID { object["sid"] = sessionID }
        if let mode { object["mode"] = mode }
        return object
    }
}

/// One P-256 key of the ring, with its RFC 7638 thumbprint as `kid`.
public struct AssertionKey: Sendable {
    public let kid: String
    public let privateKey: P256.Signing.PrivateKey?
    public let publicKey: P256.Signing.PublicKey

    public init(privateKey: P256.Signing.PrivateKey) {
        self.privateKey = privateKey
        self.publicKey = privateKey.publicKey
        self.kid = Self.thumbprint(publicKey)
    }

    public init(rawPrivateKey: Data) throws {
        try self.init(privateKey: P256.Signing.PrivateKey(rawRepresentation: rawPrivateKey))
    }

    /// A fresh key: its raw bytes for the store and the key itself.
    public static func generate() -> (raw: Data, key: AssertionKey) {
        let key = P256.Signing.PrivateKey()
        return (key.rawRepresentation, AssertionKey(privateKey: key))
    }

    var coordinates: (x: String, y: String) {
        let raw = publicKey.rawRepresentation  // x ‖ y, 32 bytes each
        return (Base64URL.encode(raw.prefix(32)), Base64URL.encode(raw.suffix(32)))
    }

    /// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    static func thumbprint(_ key: P256.Signing.PublicKey) -> String {
        let raw = key.rawRepresentation
        let canonical = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(Base64URL.encode(raw.prefix(32)))\",\"y\":\"\(Base64URL.encode(raw.suffix(32)))\"}"
        return Base64URL.encode(SHA256.hash(data: Array(canonical.utf8)))
    }

    public var jwk: [String: String] {
        let (x, y) = coordinates
        return ["kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"]
    }
}

/// ES256 JWTs, signed with swift-crypto directly: jwt-kit 5 signs through an actor
/// (`async`), and the data path has no async/await (ARCHITECTURE decision 1). Signing is
/// rare anyway — one assertion per (user, session) is reused until shortly before `exp`.
public enum AssertionSigner {
    public enum SignError: Error { case noPrivateKey }

    public static func sign(_ claims: AssertionClaims, with key: AssertionKey) throws -> String {
        guard let privateKey = key.privateKey else { throw SignError.noPrivateKey }
        let header = try JSONSerialization.data(
            withJSONObject: ["alg": "ES256", "typ": "JWT", "kid": key.kid], options: [.sortedKeys, .withoutEscapingSlashes])
        let payload = try JSONSerialization.data(withJSONObject: claims.jsonObject, options: [.sortedKeys, .withoutEscapingSlashes])
        let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(payload)
        let signature = try privateKey.signature(for: Array(signingInput.utf8))
        // JWS ES256 signatures are r ‖ s, 64 bytes: exactly swift-crypto's raw representation.
        return signingInput + "." + Base64URL.encode(signature.rawRepresentation)
    }

    /// Checks signature and returns the payload object (tests and `actas` diagnostics only).
    public static func verify(_ token: String, keys: [AssertionKey]) -> [String: Any]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let headerData = Base64URL.decode(String(parts[0])),
              let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
              header["alg"] as? String == "ES256",
              let kid = header["kid"] as? String,
              let key = keys.first(where: { $0.kid == kid }),
              let signatureData = Base64URL.decode(String(parts[2])),
              let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureData),
              key.publicKey.isValidSignature(signature, for: Array("\(parts[0]).\(parts[1])".utf8)),
              let payloadData = Base64URL.decode(String(parts[1]))
        else { return nil }
        return try? JSONSerialization.jsonObject(with: payloadData) as? [String: Any]
    }
}

/// The keys in use: the newest signs, retired ones stay published for a grace period so
/// assertions signed just before a rotation still verify everywhere.
public struct KeyRing: Sendable {
    public let signing: AssertionKey
    public let published: [AssertionKey]
    /// `/.well-known/actas/jwks.json`, rendered once per ring.
    public let jwksJSON: [UInt8]

    public init(signing: AssertionKey, published: [AssertionKey]) {
        self.signing = signing
        var all = [signing]
        for key in published where key.kid != signing.kid { all.append(key) }
        self.published = all
        let object: [String: Any] = ["keys": all.map(\.jwk)]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{\"keys\":[]}".utf8)
        self.jwksJSON = Array(data)
    }
}
