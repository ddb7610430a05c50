import ActAsCore
import ActAsHTTP
import Foundation
import NIOCore
import Testing
@testable import ActAsProxy

/// A head the proxy wrote for the next hop, read back as that hop reads it: the start line and
/// the fields in order, each line exactly as written.
struct WrittenHead {
    let text: String
    let startLine: String
    let fields: [(name: String, value: String)]

    init(_ buffer: ByteBuffer) {
        text = String(buffer: buffer)
        var lines = text.components(separatedBy: "\r\n")
        startLine = lines.removeFirst()
        fields = lines.prefix { !$0.isEmpty }.map { line in
            guard let colon = line.firstIndex(of: ":") else { return (line, "") }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t")))
        }
    }

    /// Every value of `name`, compared as the next hop compares names (ASCII case-insensitive).
    func values(_ name: String) -> [String] {
        fields.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    /// The field names, lower-cased.
    var names: [String] { fields.map { $0.name.lowercased() } }

    /// The field names as a CGI-style server reads them (lower case, `_` as `-`), which is how
    /// SPEC §5 compares spoofed names.
    var normalisedNames: [String] { names.map { $0.replacingOccurrences(of: "_", with: "-") } }

    /// Ends its header section with exactly one empty line, and nothing follows.
    var isTerminatedOnce: Bool {
        text.hasSuffix("\r\n\r\n") && text.components(separatedBy: "\r\n\r\n").count == 2
    }
}

/// A response head parsed by the proxy's own codec, as the upstream side of the handler sees it.
func responseHead(_ text: String, method: HTTPMethod = .get) throws -> ResponseHead {
    var parser = HeadParser(kind: .response, limits: HTTPLimits())
    var buffer = ByteBuffer(string: text)
    let length = try #require(try parser.parse(buffer))
    return try parser.finishResponse(buffer.readSlice(length: length)!, requestMethod: method)
}

/// The proxy's own id for the exchange under test.
let testRequestID = RequestID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)
