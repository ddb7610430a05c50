import Crypto
import Foundation

/// `X-ActAs-Signature: sha256=<hex HMAC-SHA256 of timestamp + "." + body>` (SPEC §10.5): the
/// timestamp is in the signed material, so a receiver can refuse replays outside its window.
public enum WebhookSignature {
    public static func header(secret: [UInt8], timestamp: Int64, body: [UInt8]) -> String {
        var material = Array(String(timestamp).utf8)
        material.append(UInt8(ascii: "."))
        material.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: material, using: SymmetricKey(data: secret))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }
}
