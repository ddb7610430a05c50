import Crypto
import Foundation

/// Back-channel logout tokens are accepted once (OpenID Connect Back-Channel Logout 1.0 §2.6
/// lets a receiver refuse a `jti` it has seen), on every instance: the store keeps a claim on
/// each `jti` until the token could no longer pass anyway — its `exp`, or `iat` + `maxAge`,
/// whichever is sooner, plus the clock skew.
public enum LogoutTokenReplay {
    /// How old (by `iat`) a logout token may be; tokens are sent at once, so this is generous.
    public static let maxAge: TimeInterval = 600

    /// The store key for a `jti` of `issuer` (hashed: a `jti` is the provider's, of any length).
    public static func key(issuer: String, jti: String) -> String {
        SHA256.hash(data: Data("\(issuer)\u{0}\(jti)".utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Until when a token with these claims could pass verification.
    public static func keepUntil(exp: Double, iat: Double, clockSkew: TimeInterval) -> Date {
        Date(timeIntervalSince1970: min(exp, iat + maxAge) + clockSkew)
    }
}

/// A logout token that passed verification, with what makes it one use.
public struct VerifiedLogoutToken: Sendable {
    public var claims: JSONObject
    public var replayKey: String
    public var keepUntil: Date
}
