import ActAsConsole
import ActAsCore
import ActAsHTTP

/// The request target split into path and query, with the routing questions the request
/// path asks of it. Byte comparisons; Strings only for the console (low volume).
struct RequestTarget {
    /// Origin-form target bytes (`/path?query`).
    let bytes: [UInt8]
    let pathEnd: Int

    init(head: RequestHead, override: [UInt8]?) {
        if let override {
            bytes = override
        } else {
            bytes = head.block.withUnsafeBytes { Array($0[head.targetRange]) }
        }
        pathEnd = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.count
    }

    var path: String { String(decoding: bytes[..<pathEnd], as: UTF8.self) }
    var query: String { pathEnd < bytes.count ? String(decoding: bytes[(pathEnd + 1)...], as: UTF8.self) : "" }
    var queryIfAny: String? { pathEnd < bytes.count ? String(decoding: bytes[(pathEnd + 1)...], as: UTF8.self) : nil }
    var originForm: String { String(decoding: bytes, as: UTF8.self) }

    static let consoleRoot: [UInt8] = Array("/.actas".utf8)
    static let jwks: [UInt8] = Array(Console.jwksPath.utf8)

    /// `/.actas`, `/.actas/…` and the JWKS belong to the proxy.
    var isConsole: Bool {
        guard pathEnd >= 2, bytes[0] == UInt8(ascii: "/"), bytes[1] == UInt8(ascii: ".") else { return false }
        let path = bytes[..<pathEnd]
        if path.starts(with: Self.consoleRoot) {
            return pathEnd == Self.consoleRoot.count || bytes[Self.consoleRoot.count] == UInt8(ascii: "/")
        }
        return path.elementsEqual(Self.jwks)
    }

    /// `auth.public_paths`, matched on the normalised path (strict: anything with an encoded
    /// `/`, `\`, NUL or double encoding is never public), so `/static/../admin` or
    /// `/static/..%2fadmin` cannot ride on `/static/*`.
    func isPublic(_ patterns: [PathPattern]) -> Bool {
        guard !patterns.isEmpty else { return false }
        return bytes[..<pathEnd].withUnsafeBytes { raw in
            switch PathNormalizer.normalize(raw, strict: true) {
            case .unchanged:
                return patterns.contains { $0.matches(raw) }
            case .normalized(let path):
                return path.withUnsafeBytes { normal in patterns.contains { $0.matches(normal) } }
            case .badEncoding:
                return false
            }
        }
    }
}
