import ActAsCrypto
import Crypto
import Foundation

/// One browser's OIDC sign-in in progress, carried by the `__Host-actas_oidc` cookie. The
/// cookie holds a random secret, the return path and the start time, with a MAC keyed from
/// the store's signing keys (so every instance accepts it); `state`, `nonce` and the PKCE
/// verifier are derived from the secret, so a callback must come with the cookie of the
/// browser that started it. One use on every instance: the callback claims `oneUseKey` in
/// the store.
public struct SignInFlow: Sendable, Equatable {
    public static let cookieName = "__Host-actas_oidc"
    /// SPEC §10.3: at most ten minutes.
    public static let lifetime: TimeInterval = 600

    public let secret: String
    public let returnPath: String
    public let startedAt: Date

    public init(secret: String, returnPath: String, startedAt: Date) {
        self.secret = secret
        self.returnPath = returnPath
        self.startedAt = startedAt
    }

    public static func start(returnPath: String, now: Date) -> SignInFlow {
        SignInFlow(secret: Base64URL.encode(Secrets.randomBytes(32)), returnPath: returnPath, startedAt: Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down)))
    }

    public var state: String { derive("state") }
    public var nonce: String { derive("nonce") }
    /// RFC 7636: 43 characters of the unreserved alphabet (base64url of 32 bytes).
    public var codeVerifier: String { derive("pkce") }
    public var codeChallenge: String { Self.challenge(for: codeVerifier) }

    public static func challenge(for verifier: String) -> String {
        Base64URL.encode(Data(SHA256.hash(data: Data(verifier.utf8))))
    }

    private func derive(_ purpose: String) -> String {
        let key = SymmetricKey(data: Data(secret.utf8))
        return Base64URL.encode(Data(HMAC<SHA256>.authenticationCode(for: Data("actas oidc \(purpose)".utf8), using: key)))
    }

    public func expired(now: Date) -> Bool {
        now.timeIntervalSince(startedAt) > Self.lifetime || startedAt.timeIntervalSince(now) > 60
    }

    /// The store key that makes this flow one use on every instance (SHA-256 of its `state`).
    public var oneUseKey: String {
        SHA256.hash(data: Data(state.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// After this, `expired` refuses the flow anyway, so its one-use claim may go.
    public var usableUntil: Date { startedAt.addingTimeInterval(Self.lifetime + 1) }

    // MARK: the cookie

    /// `v1.<secret>.<started>.<rd base64url>.<mac>`
    public func cookieValue(keys: KeyRing) -> String? {
        guard let key = Self.macKey(keys.signing) else { return nil }
        let body = "v1.\(secret).\(Int(startedAt.timeIntervalSince1970)).\(Base64URL.encode(Array(returnPath.utf8)))"
        return "\(body).\(Self.mac(body, key: key))"
    }

    public static func parse(cookie value: String, keys: KeyRing) -> SignInFlow? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard value.utf8.count <= 4096, parts.count == 5, parts[0] == "v1", let started = Int(parts[2]),
              let rdData = Base64URL.decode(parts[3]), let rd = String(data: rdData, encoding: .utf8) else { return nil }
        let body = parts[0..<4].joined(separator: ".")
        let valid = keys.published.contains { key in
            guard let mac = macKey(key) else { return false }
            return constantTimeEquals(Array(parts[4].utf8), Array(Self.mac(body, key: mac).utf8))
        }
        guard valid else { return nil }
        return SignInFlow(secret: parts[1], returnPath: rd, startedAt: Date(timeIntervalSince1970: TimeInterval(started)))
    }

    static func macKey(_ key: AssertionKey) -> SymmetricKey? {
        guard let privateKey = key.privateKey else { return nil }
        return HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: privateKey.rawRepresentation),
            info: Data("actas oidc flow cookie v1".utf8), outputByteCount: 32)
    }

    static func mac(_ body: String, key: SymmetricKey) -> String {
        Base64URL.encode(Data(HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: key)))
    }
}
