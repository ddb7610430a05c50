import Crypto
import Foundation

/// RFC 6455 §4.2.2: the `Sec-WebSocket-Accept` a server that read the handshake answers to
/// `Sec-WebSocket-Key`. A `101` without it, or with another value, was not made for this
/// request (a misbehaving or confused upstream, or a cached answer), so the proxy does not
/// open a tunnel on it.
public enum WebSocketAccept {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    public static func value(forKey key: String) -> String {
        let trimmed = key.trimmingCharacters(in: [" ", "\t"])
        return Data(Insecure.SHA1.hash(data: Data((trimmed + guid).utf8))).base64EncodedString()
    }

    /// Whether `accept` (as the upstream sent it, nil when absent) answers `key`.
    public static func matches(accept: String?, key: String?) -> Bool {
        guard let accept, let key, !key.isEmpty else { return false }
        return accept.trimmingCharacters(in: [" ", "\t"]) == value(forKey: key)
    }
}
