@testable import ActAsAudit
import FuzzSupport
import NIOCore

/// The redactor on every input it takes from a request: query strings, form bodies, cookie and
/// other headers, free text, and whole records through the line encoder. The first byte picks
/// the input; the rest is the input. `checkLoggable` states what must hold for the output.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let mode = data[0] % 7
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let text = String(decoding: bytes, as: UTF8.self)
    let redactor = fuzzRedactor
    switch mode {
    case 0:
        // Query: the fast writer and the general path must give the same bytes.
        guard let value = redactor.redactQuery(text) else {
            precondition(text.isEmpty)
            return 0
        }
        checkLoggable(value, "query \(text.debugDescription)")
        checkPairSecrets(decodedPairs(Array(text.utf8)), in: value, "query \(text.debugDescription)")
        var fast: [UInt8] = []
        redactor.writeQuery(text, into: &fast)
        var general: [UInt8] = []
        JSONWriter.writeValue(value, into: &general)
        precondition(fast == general, "writeQuery \(String(decoding: fast, as: UTF8.self)) != \(String(decoding: general, as: UTF8.self))")
    case 1:
        let body = AuditCapturedBody(bytes: bytes, contentType: "application/x-www-form-urlencoded")
        guard let value = redactor.redactBody(body) else { return 0 }
        checkLoggable(value, "form \(text.debugDescription)")
        if value["unparsed"] == nil { checkPairSecrets(decodedPairs(bytes), in: value, "form \(text.debugDescription)") }
    case 2, 3:
        // Cookie headers: every value goes, names stay; Set-Cookie keeps its flags.
        let name = mode == 2 ? "cookie" : "set-cookie"
        let logged = redactor.redactHeaderValue(name: name, value: text)
        for item in logged.components(separatedBy: "; ") where !item.isEmpty {
            let flag = mode == 3 && ["secure", "httponly", "partitioned"].contains(item.lowercased())
            precondition(
                flag || item == Redactor.placeholder || item.hasSuffix("=" + Redactor.placeholder),
                "\(name) value left in \(logged.debugDescription) from \(text.debugDescription)")
        }
        checkLoggable(.string(logged), "\(name) \(text.debugDescription)")
    case 4:
        // A header block: `name: value` lines.
        var headers: [AuditHeader] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append(AuditHeader(String(line[..<colon]), String(line[line.index(after: colon)...])))
        }
        let value = redactor.redactHeaders(headers)
        checkLoggable(value, exempt: ["cookie", "set-cookie"], "headers \(text.debugDescription)")
        for header in headers where plainlySecret(header.name) && header.name.lowercased() != "set-cookie" {
            var others: [String] = []
            for other in headers where other.name != header.name { others += [other.name, other.value] }
            checkSecretAbsent(header.value, from: value, otherTexts: others + [header.name], "headers \(text.debugDescription)")
        }
    case 5:
        let logged = redactor.redactText(text)
        checkLoggable(.string(logged), "text \(text.debugDescription)")
    default:
        encodeRecord(bytes)
    }
    return 0
}

/// A whole request record: path, query, one header and a form body from the input's lines.
/// The line must be one line, verify against its own hash, and read back with the same values.
private func encodeRecord(_ bytes: [UInt8]) {
    let (pathLine, rest1) = splitFirstLine(bytes)
    let (queryLine, rest2) = splitFirstLine(rest1)
    let (headerLine, body) = splitFirstLine(rest2)
    var record = AuditRecord(type: .request, timestamp: AuditTimestamp(millisecondsSinceEpoch: 1_700_000_000_123))
    record.path = "/" + String(decoding: pathLine, as: UTF8.self)
    record.query = String(decoding: queryLine, as: UTF8.self)
    record.method = "POST"
    record.user = record.path
    record.requestHeaders = [AuditHeader("x-fuzz", String(decoding: headerLine, as: UTF8.self))]
    record.requestBody = AuditCapturedBody(bytes: body, contentType: "application/x-www-form-urlencoded")
    record.detail = String(decoding: headerLine, as: UTF8.self)
    let encoder = AuditLineEncoder(redactor: fuzzRedactor)
    var out: [UInt8] = []
    let hash = encoder.encode(record, seq: 7, prev: .genesis, into: &out)
    precondition(out.last == UInt8(ascii: "\n") && out.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") })
    let line = Array(out.dropLast())
    let inspected = line.withUnsafeBufferPointer { AuditLineInspector.inspect($0) }
    guard case .success(let facts) = inspected else { fatalError("an encoded line does not inspect: \(inspected)") }
    precondition(facts.hashMatches && facts.hash == hash && facts.seq == 7 && facts.prev == .genesis)
    guard let entry = AuditLogEntry(line: line) else { fatalError("an encoded line does not read back") }
    for key in ["path", "user", "detail"] {
        if let text = entry.fields[key]?.stringValue {
            precondition(fuzzRedactor.scrubTokens(text) == text, "a credential is left in \(key): \(text.debugDescription)")
        }
    }
    for key in ["query", "request_headers", "request_body"] {
        if let value = entry.fields[key] { checkLoggable(value, "record \(key) of \(String(decoding: bytes, as: UTF8.self).debugDescription)") }
    }
}

@_cdecl("FuzzRedactor_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzDriver(argc, argv, fuzz)
}
