import Crypto
import Foundation

/// `__Host-actas_device`: proof that this browser signed in to an account before, so the
/// sign-in throttle gives it its own budget (OWASP "device cookies"). The value is
/// `v1.<device id>.<HMAC-SHA256 over the id and the lower-cased username>`, keyed with a key
/// derived (HKDF) from the assertion signing keys the store already keeps: every instance
/// sharing the store accepts it, and no new secret needs managing. A cookie is bound to one
/// account, so a cookie for the attacker's own account buys nothing against another. It
/// grants no access, only a throttle budget; a rotated signing key retires cookies once the
/// old key leaves the ring (the browser then counts as new until its next sign-in).
public enum DeviceCookie {
    public static let name = "__Host-actas_device"
    /// A year: long enough that the owner's usual browser keeps its budget.
    public static let maxAge = 365 * 24 * 3600

    /// A fresh cookie value for `username`, signed with the ring's current key.
    public static func issue(username: String, keys: KeyRing) -> String? {
        guard let key = macKey(keys.signing) else { return nil }
        let device = Base64URL.encode(Secrets.randomBytes(16))
        return "v1.\(device).\(mac(device: device, username: username, key: key))"
    }

    /// The device id, when `value` was issued for `username` with a key still in the ring.
    public static func verify(_ value: String, username: String, keys: KeyRing) -> String? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard value.utf8.count <= 128, parts.count == 3, parts[0] == "v1",
              let id = Base64URL.decode(String(parts[1])), id.count == 16 else { return nil }
        let device = String(parts[1])
        for key in keys.published {
            guard let secret = macKey(key) else { continue }
            if constantTimeEquals(Array(parts[2].utf8), Array(mac(device: device, username: username, key: secret).utf8)) {
                return device
            }
        }
        return nil
    }

    static func macKey(_ key: AssertionKey) -> SymmetricKey? {
        guard let privateKey = key.privateKey else { return nil }
        return HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: privateKey.rawRepresentation),
            info: Data("actas device cookie v1".utf8), outputByteCount: 32)
    }

    static func mac(device: String, username: String, key: SymmetricKey) -> String {
        let message = "device v1|\(device)|\(username.lowercased())"
        return Base64URL.encode(Data(HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: key)))
    }
}
