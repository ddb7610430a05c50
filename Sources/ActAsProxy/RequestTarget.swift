import ActAsCore
import ActAsHTTP
import ActAsPages
import NIOCore

/// The request target split into path and query, with the routing questions the request
/// path asks of it. A slice of the parsed head (no copy); Strings only when asked for.
struct RequestTarget {
    /// Origin-form target bytes (`/path?query`).
    let bytes: ByteBuffer
    let pathEnd: Int

    init(head: RequestHead, override: [UInt8]?) {
        if let override {
            bytes = ByteBuffer(bytes: override)
        } else {
            let block = head.block.bytes
            bytes = block.getSlice(at: block.readerIndex + head.targetRange.lowerBound, length: head.targetRange.count)!
        }
        pathEnd = bytes.withUnsafeReadableBytes { $0.firstIndex(of: UInt8(ascii: "?")) ?? $0.count }
    }

    func withPath<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try bytes.withUnsafeReadableBytes { try body(UnsafeRawBufferPointer(rebasing: $0[..<pathEnd])) }
    }

    var path: String { withPath { String(decoding: $0, as: UTF8.self) } }
    /// `?query` as written, or empty.
    var querySuffix: [UInt8] { bytes.getBytes(at: bytes.readerIndex + pathEnd, length: bytes.readableBytes - pathEnd) ?? [] }
    var query: String { queryIfAny ?? "" }
    var queryIfAny: String? {
        pathEnd < bytes.readableBytes ? bytes.getString(at: bytes.readerIndex + pathEnd + 1, length: bytes.readableBytes - pathEnd - 1) : nil
    }
    var originForm: String { String(buffer: bytes) }

    static let consoleRoot: [UInt8] = Array("/.actas".utf8)
    static let jwks: [UInt8] = Array(ConsoleRoutes.jwksPath.utf8)

    /// `/.actas`, `/.actas/…` and the JWKS belong to the proxy.
    var isConsole: Bool {
        withPath { path in
            guard path.count >= 2, path[0] == UInt8(ascii: "/"), path[1] == UInt8(ascii: ".") else { return false }
            if path.starts(with: Self.consoleRoot) {
                return path.count == Self.consoleRoot.count || path[Self.consoleRoot.count] == UInt8(ascii: "/")
            }
            return path.elementsEqual(Self.jwks)
        }
    }

    /// `auth.public_paths`, matched on the normalised path (strict: anything with an encoded
    /// `/`, `\`, NUL or double encoding is never public), so `/static/../admin` or
    /// `/static/..%2fadmin` cannot ride on `/static/*`.
    func isPublic(_ patterns: [PathPattern]) -> Bool {
        guard !patterns.isEmpty else { return false }
        return withPath { raw in
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
