import ActAsPages
import Foundation

/// The console's JSON, as typed values (SPEC §4's shapes): one encoder for the API, the
/// notices and the live stream, with keys sorted and `/` unescaped as the answers always were.
enum ConsoleJSON {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func data(_ value: some Encodable) -> [UInt8] {
        // Encoding our own value types cannot fail (no non-finite floats, no custom throws).
        (try? Array(encoder().encode(value))) ?? Array("{}".utf8)
    }

    static func text(_ value: some Encodable) -> String {
        String(decoding: data(value), as: UTF8.self)
    }
}

extension ConsoleResponse {
    static func json(_ status: Int, _ value: some Encodable, headers: [(name: String, value: String)] = []) -> ConsoleResponse {
        ConsoleResponse(status: status, headers: [("Content-Type", "application/json")] + securityHeaders + headers, body: ConsoleJSON.data(value) + [0x0A])
    }
}
