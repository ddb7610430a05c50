import Crypto
import Foundation

/// Random credentials and their stored forms. Credentials are 256-bit random values; the store
/// keeps only their SHA-256, so a copy of the database signs nobody in.
public enum Secrets {
    /// API tokens start with this, so they can be recognised (and stripped) in `Authorization`.
    public static let apiTokenPrefix = "actas_"

    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// 43 base64url characters (256 bits).
    public static func sessionToken() -> String { Base64URL.encode(randomBytes(32)) }

    public static func csrfToken() -> String { Base64URL.encode(randomBytes(32)) }

    /// `actas_` + 43 base64url characters.
    public static func apiToken() -> String { apiTokenPrefix + Base64URL.encode(randomBytes(32)) }

    /// Opaque public ids such as `usr_…`, `tok_…`, `imp_…` (20 lower-case base32 characters, 100 bits).
    public static func identifier(prefix: String) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        let bytes = randomBytes(20)
        return prefix + String(decoding: bytes.map { alphabet[Int($0 & 31)] }, as: UTF8.self)
    }

    /// Lower-case hex SHA-256: how sessions and tokens are stored and looked up.
    public static func hash(_ credential: String) -> String {
        hexString(SHA256.hash(data: Array(credential.utf8)))
    }

    public static func hash(_ credential: UnsafeRawBufferPointer) -> String {
        hexString(SHA256.hash(data: credential))
    }
}
