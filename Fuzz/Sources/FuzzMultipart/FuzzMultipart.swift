@testable import ActAsAudit
import Foundation
import FuzzSupport
import NIOCore

/// The multipart parser. The input's first line is the `boundary` parameter as sent in the
/// Content-Type (quoted, odd, or empty), the rest is the body. The parser is run directly with
/// the boundary bytes and through `redactBody` with the whole header, so the media type's own
/// parameter parsing is fuzzed too. Whatever comes out must satisfy `checkLoggable`, and file
/// contents (parts with a filename) never appear in it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let (boundaryLine, body) = splitFirstLine(bytes)
    let parameter = String(decoding: boundaryLine, as: UTF8.self)
    let context = { String(decoding: bytes, as: UTF8.self).debugDescription }

    let direct = body.withUnsafeBufferPointer {
        MultipartParser.parse($0, boundary: boundaryLine, redactor: fuzzRedactor)
    }
    if let direct { checkLoggable(direct, context()) }

    let contentType = "multipart/form-data; boundary=" + parameter
    guard let logged = fuzzRedactor.redactBody(AuditCapturedBody(bytes: body, contentType: contentType)) else {
        precondition(body.isEmpty)
        return 0
    }
    checkLoggable(logged, context())
    // A plain token boundary means the same bytes either way.
    let plainToken = !boundaryLine.isEmpty && boundaryLine.count <= 200
        && boundaryLine.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: "\"") }
    if plainToken, let direct {
        precondition(logged == direct, "redactBody \(logged.jsonText) != parse \(direct.jsonText)")
    }
    if let direct { checkFileContents(body, boundary: boundaryLine, logged: direct, context()) }
    return 0
}

/// Parts whose headers give a `filename` have their contents logged as a size only: a content
/// of 8+ bytes that occurs nowhere else in the body must not appear in the log.
private func checkFileContents(_ body: [UInt8], boundary: [UInt8], logged: AuditValue, _ context: @autoclosure () -> String) {
    let delimiter = Array("\r\n--".utf8) + boundary
    var sections: [[UInt8]] = []
    var start = 0
    var index = 0
    while index + delimiter.count <= body.count {
        if body[index..<(index + delimiter.count)].elementsEqual(delimiter) {
            sections.append(Array(body[start..<index]))
            index += delimiter.count
            start = index
        } else {
            index += 1
        }
    }
    sections.append(Array(body[start...]))
    for (position, section) in sections.enumerated() {
        guard let headerEnd = find(Array("\r\n\r\n".utf8), in: section) else { continue }
        let headers = String(decoding: section[..<headerEnd], as: UTF8.self).lowercased()
        guard isFilePart(headers) else { continue }
        let content = String(decoding: section[(headerEnd + 4)...], as: UTF8.self)
        var others: [String] = [headers]
        for (other, item) in sections.enumerated() where other != position { others.append(String(decoding: item, as: UTF8.self)) }
        if content.utf8.count >= 8 { checkSecretAbsent(content, from: logged, otherTexts: others, context()) }
    }
}

/// Whether a part's Content-Disposition has a `filename` parameter (split at `;` outside
/// quoted strings, as RFC 7578 reads it).
private func isFilePart(_ headers: String) -> Bool {
    for line in headers.components(separatedBy: "\r\n") {
        guard let colon = line.firstIndex(of: ":"),
            line[..<colon].trimmingCharacters(in: .init(charactersIn: " \t")) == "content-disposition"
        else { continue }
        var pieces: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in line[line.index(after: colon)...] {
            if escaped { escaped = false; current.append(character); continue }
            if quoted && character == "\\" { escaped = true; current.append(character); continue }
            if character == "\"" { quoted.toggle() }
            if character == ";" && !quoted { pieces.append(current); current = "" } else { current.append(character) }
        }
        pieces.append(current)
        for piece in pieces.dropFirst() {
            guard let equals = piece.firstIndex(of: "=") else { continue }
            if piece[..<equals].trimmingCharacters(in: .init(charactersIn: " \t")) == "filename" { return true }
        }
    }
    return false
}

private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
        return start
    }
    return nil
}

@_cdecl("FuzzMultipart_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzDriver(argc, argv, fuzz)
}
