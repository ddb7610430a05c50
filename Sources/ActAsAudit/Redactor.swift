import ActAsCore
import CompressNIO
import NIOCore

/// Decides what of a request may be written to the log (SPEC §8). Pure and `Sendable`: built once
/// from `[audit]` and shared.
///
/// - Headers named in `redact_headers`, or whose name contains a redact key, log `[REDACTED]`;
///   for `cookie`/`set-cookie` the cookie names stay and every value goes
///   (`sid=[REDACTED]; theme=[REDACTED]`). In other cookie headers, cookies whose name contains a
///   redact key lose their value.
/// - Query, form, multipart and JSON members whose name contains a redact key log `[REDACTED]`,
///   at any depth. Names are compared after percent-decoding (`pass%77ord`, `+` as space), ASCII
///   case-folding and dropping ASCII punctuation and spaces on both sides, so `API_KEY`,
///   `api-key`, `apiKey` and `pass word` all match `api_key`/`apikey`/`password`.
/// - A name without any letter or digit (`=x`, `"": …`, `name=""`) counts as sensitive.
/// - Any string anywhere that contains a JWT, a `Bearer <token>`, an `actas_` API token or a
///   well-known issuer format (GitHub, AWS key ids, Slack, Stripe, PEM private keys) has that
///   part replaced by `[REDACTED]` (Redactor+Tokens.swift).
/// - JSON inside text values, and key/value pairs whose naming member names a secret, are
///   redacted too (Redactor+Structure.swift).
/// - Bodies: only `application/x-www-form-urlencoded`, `multipart/form-data`, `application/json`
///   and `application/*+json` are parsed, after gzip/deflate decoding capped at
///   `maxDecodedBodyBytes`. Everything else — other types, truncated captures, malformed data,
///   invalid UTF-8, unknown encodings, bombs — logs
///   `{"unparsed":true,"bytes":N,"content_type":"…","reason":"…"}`, never the bytes.
public struct Redactor: Sendable {
    public static let placeholder = "[REDACTED]"

    /// As configured (lower-cased).
    public let redactKeys: [String]
    public let redactHeaders: Set<String>
    /// A captured body longer than this is treated as truncated.
    public let bodyCaptureBytes: Int
    /// Cap on a decoded (gunzipped) body; beyond it the body is logged as unparsed.
    public let maxDecodedBodyBytes: Int

    /// Redact keys folded the way names are folded before matching.
    private let foldedKeys: [[UInt8]]

    public init(
        redactKeys: [String], redactHeaders: [String], bodyCaptureBytes: Int = 8192, maxDecodedBodyBytes: Int? = nil
    ) {
        self.redactKeys = redactKeys.map { $0.lowercased() }
        self.redactHeaders = Set(redactHeaders.map { $0.lowercased() })
        self.bodyCaptureBytes = max(bodyCaptureBytes, 0)
        self.maxDecodedBodyBytes = maxDecodedBodyBytes ?? max(4 * bodyCaptureBytes, 64 * 1024)
        self.foldedKeys = self.redactKeys.map { Self.fold(Array($0.utf8)) }.filter { !$0.isEmpty }
    }

    /// SPEC §3 defaults.
    public static let defaultRedactKeys = [
        "password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential", "private_key", "ssn",
    ]
    public static let defaultRedactHeaders = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"]

    // MARK: - Names

    /// Lower-cases ASCII letters, keeps digits and non-ASCII bytes, drops other ASCII.
    private static func fold(_ bytes: [UInt8]) -> [UInt8] {
        bytes.compactMap { byte in
            switch byte {
            case 0x41...0x5A: return byte | 0x20
            case 0x61...0x7A, 0x30...0x39, 0x80...0xFF: return byte
            default: return nil
            }
        }
    }

    /// Whether a field or header name contains any redact key, or has no letter or digit at all
    /// (see the type's documentation).
    public func isSensitiveName(_ name: String) -> Bool {
        Self.isNameless(name) || containsRedactKey(name)
    }

    /// Whether `text` contains a redact key, compared as names are (see the type's documentation).
    func containsRedactKey(_ name: String) -> Bool {
        // Names arrive decoded once; one still holding escapes (`pass%2577ord` sent, or a
        // framework that decodes twice) is checked in every decoded form too.
        if name.utf8.contains(UInt8(ascii: "%")) {
            var form = Array(name.utf8)
            for _ in 0..<3 {
                let decoded = PercentEncoding.decode(form)
                if decoded == form { break }
                form = decoded
                if containsRedactKey(utf8: Array(String(decoding: form, as: UTF8.self).lowercased().utf8)) { return true }
            }
        }
        if name.utf8.contains(where: { $0 >= 0x80 }) {
            return containsRedactKey(utf8: Array(name.lowercased().utf8))
        }
        if let result = name.utf8.withContiguousStorageIfAvailable({ containsRedactKey(bytes: $0) }) { return result }
        return containsRedactKey(utf8: Array(name.utf8))
    }

    private func containsRedactKey(utf8: [UInt8]) -> Bool {
        utf8.withUnsafeBufferPointer { containsRedactKey(bytes: $0) }
    }

    /// `isSensitiveName` for the bytes of a name that needs no decoding (the query's short path).
    func isSensitiveName(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        Self.isNameless(bytes: bytes) || containsRedactKey(bytes: bytes)
    }

    func containsRedactKey(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if foldedKeys.isEmpty || bytes.isEmpty { return false }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count) { scratch in
            var count = 0
            for byte in bytes {
                switch byte {
                case 0x41...0x5A: scratch[count] = byte | 0x20; count += 1
                case 0x61...0x7A, 0x30...0x39, 0x80...0xFF: scratch[count] = byte; count += 1
                default: break
                }
            }
            for key in foldedKeys where key.count <= count {
                let first = key[0]
                var start = 0
                while start + key.count <= count {
                    if scratch[start] == first {
                        var offset = 1
                        while offset < key.count && scratch[start + offset] == key[offset] { offset += 1 }
                        if offset == key.count { return true }
                    }
                    start += 1
                }
            }
            return false
        }
    }

    // MARK: - Headers

    /// The loggable value of one header.
    public func redactHeaderValue(name: String, value: String) -> String {
        let lowered = name.lowercased()
        let sensitive = redactHeaders.contains(lowered) || isSensitiveName(lowered)
        if lowered == "cookie" || lowered == "set-cookie" {
            return redactCookies(value, allValues: sensitive, isSetCookie: lowered == "set-cookie")
        }
        return sensitive ? Self.placeholder : redactText(value)
    }

    /// Headers as an object `lower-cased name → value`; a repeated name gives an array of values.
    public func redactHeaders(_ headers: [AuditHeader]) -> AuditValue {
        var builder = ObjectBuilder()
        for header in headers {
            let value = redactHeaderValue(name: header.name, value: header.value)
            builder.add(scrubTokens(header.name.lowercased()), .string(value))
        }
        return builder.value
    }

    // MARK: - Query and forms

    /// A query string (without `?`) as an object `name → value` (repeated → array), or nil when
    /// empty. Pairs are split at `&` and `;`; names and values are percent-decoded, `+` as space.
    public func redactQuery(_ query: String) -> AuditValue? {
        if query.isEmpty { return nil }
        if let value = query.utf8.withContiguousStorageIfAvailable({ redactForm($0) }) { return value }
        return Array(query.utf8).withUnsafeBufferPointer { redactForm($0) }
    }

    /// Writes `redactQuery(query)` of a non-empty query as JSON (an empty query is left out of
    /// the line, not written as `{}`). The usual query — printable ASCII without escapes,
    /// a few distinct names, no tokens — is written straight from its bytes; anything else takes
    /// the general path. Both give the same bytes (a unit test holds them to it).
    func writeQuery(_ query: String, into out: inout [UInt8]) {
        let written = query.utf8.withContiguousStorageIfAvailable { writePlainQuery($0, into: &out) } ?? false
        if !written, let value = redactQuery(query) { JSONWriter.writeValue(value, into: &out) }
    }

    /// False, having written nothing, when the query needs the general path.
    func writePlainQuery(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) -> Bool {
        let maxPairs = 16
        return withUnsafeTemporaryAllocation(of: (name: Range<Int>, value: Range<Int>?).self, capacity: maxPairs) { pairs in
            var count = 0
            var pairStart = 0
            for index in 0...bytes.count {
                let end = index == bytes.count
                if !end {
                    let byte = bytes[index]
                    // Escapes, `+`, quotes and backslashes need decoding or escaping: general path.
                    guard byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") && byte != UInt8(ascii: "+")
                        && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
                    else { return false }
                    if byte != UInt8(ascii: "&") && byte != UInt8(ascii: ";") { continue }
                }
                if index > pairStart {
                    guard count < maxPairs else { return false }
                    let pair = pairStart..<index
                    if let equals = bytes[pair].firstIndex(of: UInt8(ascii: "=")) {
                        pairs[count] = (pairStart..<equals, (equals + 1)..<index)
                    } else {
                        pairs[count] = (pair, nil)
                    }
                    let name = UnsafeBufferPointer(rebasing: bytes[pairs[count].name])
                    // A repeated name becomes an array; a token-looking name or value gets scrubbed.
                    for earlier in 0..<count where bytes[pairs[earlier].name].elementsEqual(name) { return false }
                    if Self.scrubTokens(bytes: name) != nil { return false }
                    if let value = pairs[count].value {
                        let valueBytes = UnsafeBufferPointer(rebasing: bytes[value])
                        if Self.scrubTokens(bytes: valueBytes) != nil { return false }
                        // JSON-looking values and values naming a secret (a key/value pair) need
                        // the general path's rules.
                        if let first = valueBytes.first, first == UInt8(ascii: "{") || first == UInt8(ascii: "[") { return false }
                        if containsRedactKey(bytes: valueBytes) { return false }
                    }
                    count += 1
                }
                pairStart = index + 1
            }
            // Nothing here needs escaping: `{}`, then per pair `,"name":"value"` with the value
            // at most the query's bytes or the placeholder. One append for the whole object.
            let bound = 2 + count * (6 + Self.placeholder.utf8.count) + bytes.count
            guard bound <= ShortRun.stackLimit else { return false }
            out.appendShortRun(capacity: bound) { run in
                run.put(UInt8(ascii: "{"))
                for position in 0..<count {
                    if position > 0 { run.put(UInt8(ascii: ",")) }
                    let name = UnsafeBufferPointer(rebasing: bytes[pairs[position].name])
                    run.put(UInt8(ascii: "\""))
                    run.put(name)
                    run.put(#"":""#)
                    if isSensitiveName(bytes: name) {
                        run.put("[REDACTED]")
                    } else if let value = pairs[position].value {
                        run.put(UnsafeBufferPointer(rebasing: bytes[value]))
                    }
                    run.put(UInt8(ascii: "\""))
                }
                run.put(UInt8(ascii: "}"))
            }
            return true
        }
    }

    func redactForm(_ bytes: UnsafeBufferPointer<UInt8>) -> AuditValue {
        // Decoded pairs first (a pair's value may be redacted by a sibling that names it), then
        // the object. Sensitive names have no value here.
        var names: [String] = []
        var values: [String?] = []
        var pairStart = 0
        var index = 0
        while index <= bytes.count {
            if index == bytes.count || bytes[index] == UInt8(ascii: "&") || bytes[index] == UInt8(ascii: ";") {
                if index > pairStart {
                    let pair = decodePair(UnsafeBufferPointer(rebasing: bytes[pairStart..<index]))
                    names.append(pair.name)
                    values.append(pair.value)
                }
                pairStart = index + 1
            }
            index += 1
        }
        let pairValues = pairValuePositions(names: names, values: values)
        var builder = ObjectBuilder()
        for (position, name) in names.enumerated() {
            let value = values[position].map { pairValues.contains(position) ? Self.placeholder : redactText($0) }
            builder.add(scrubTokens(name), .string(value ?? Self.placeholder))
        }
        return builder.value
    }

    /// A form pair's decoded name, and its decoded value unless the name is sensitive.
    private func decodePair(_ pair: UnsafeBufferPointer<UInt8>) -> (name: String, value: String?) {
        let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.count
        let rawName = UnsafeBufferPointer(rebasing: pair[0..<equals])
        let name = Self.percentDecode(rawName, plusAsSpace: true)
        let encoded = rawName.contains { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }
        if isSensitiveName(name) || (encoded && containsRedactKey(bytes: rawName)) { return (name, nil) }
        guard equals < pair.count else { return (name, "") }
        return (name, Self.percentDecode(UnsafeBufferPointer(rebasing: pair[(equals + 1)...]), plusAsSpace: true))
    }

    /// `%XX` → byte (a malformed escape stays literal); invalid UTF-8 in the result → U+FFFD.
    static func percentDecode(_ bytes: UnsafeBufferPointer<UInt8>, plusAsSpace: Bool) -> String {
        if !bytes.contains(where: { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return PercentEncoding.decodeString(bytes, plusAsSpace: plusAsSpace)
    }

    // MARK: - Bodies

    /// The loggable form of a captured body, or nil for an empty body.
    public func redactBody(_ body: AuditCapturedBody) -> AuditValue? {
        let captured = body.bytes.readableBytes
        if body.totalBytes <= 0 && captured == 0 { return nil }
        let contentType = body.contentType.map { $0.trimmingBlanks() }
        func unparsed(_ reason: String) -> AuditValue {
            var members: [AuditValue.Member] = [
                .init("unparsed", .bool(true)), .init("bytes", .integer(max(body.totalBytes, Int64(captured)))),
            ]
            if let contentType, !contentType.isEmpty {
                members.append(.init("content_type", .string(scrubTokens(String(contentType.prefix(200))))))
            }
            if let encoding = body.contentEncoding, !encoding.isEmpty {
                members.append(.init("content_encoding", .string(scrubTokens(String(encoding.prefix(100))))))
            }
            members.append(.init("reason", .string(reason)))
            return .object(members)
        }

        let mediaType = MediaType(contentType ?? "")
        guard let kind = mediaType.bodyKind else { return unparsed("unsupported_type") }
        if captured > bodyCaptureBytes || Int64(captured) < body.totalBytes { return unparsed("truncated") }

        var encoded = body.bytes
        let decoded: ByteBuffer
        switch (body.contentEncoding ?? "").trimmingBlanks().lowercased() {
        case "", "identity":
            decoded = encoded
        case "gzip", "x-gzip":
            guard let output = Self.inflate(&encoded, algorithm: .gzip, limit: maxDecodedBodyBytes) else {
                return unparsed("bad_encoding")
            }
            guard output.readableBytes <= maxDecodedBodyBytes else { return unparsed("decoded_too_large") }
            decoded = output
        case "deflate":
            guard let output = Self.inflate(&encoded, algorithm: .zlib, limit: maxDecodedBodyBytes) else {
                return unparsed("bad_encoding")
            }
            guard output.readableBytes <= maxDecodedBodyBytes else { return unparsed("decoded_too_large") }
            decoded = output
        default:
            return unparsed("unsupported_encoding")
        }

        return decoded.withUnsafeReadableBytes { raw -> AuditValue in
            let bytes = raw.bindMemory(to: UInt8.self)
            switch kind {
            case .json:
                guard UTF8Validation.isValid(bytes) else { return unparsed("invalid_utf8") }
                do throws(JSONParser.Failure) {
                    return try JSONParser.parse(bytes, redactor: self)
                } catch {
                    return unparsed(error == .tooDeep ? "too_deep" : "invalid_json")
                }
            case .form:
                guard UTF8Validation.isValid(bytes) else { return unparsed("invalid_utf8") }
                return redactForm(bytes)
            case .multipart:
                guard let boundary = mediaType.parameter("boundary"), !boundary.isEmpty, boundary.utf8.count <= 200,
                    let value = MultipartParser.parse(bytes, boundary: Array(boundary.utf8), redactor: self)
                else { return unparsed("invalid_multipart") }
                return value
            }
        }
    }

    /// Inflates at most `limit` bytes (one more is allowed so "too large" can be told apart).
    /// nil for corrupt, incomplete or trailing data.
    static func inflate(_ input: inout ByteBuffer, algorithm: ZlibAlgorithm, limit: Int) -> ByteBuffer? {
        guard input.readableBytes > 0, let decompressor = try? ZlibDecompressor(algorithm: algorithm) else { return nil }
        var output = ByteBufferAllocator().buffer(capacity: limit + 1)
        do {
            try decompressor.inflate(from: &input, to: &output)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            return output.readableBytes > limit ? output : nil  // a bomb, or the output filled exactly
        } catch {
            return nil
        }
        if output.readableBytes > limit { return output }
        // No error can also mean "input ran out before the end of the stream": feed one more byte;
        // a finished stream ignores it (Z_STREAM_END without consuming).
        guard input.readableBytes == 0 else { return nil }  // trailing bytes after the stream
        var probe = ByteBuffer(bytes: [0])
        var sink = ByteBufferAllocator().buffer(capacity: 16)
        do {
            try decompressor.inflate(from: &probe, to: &sink)
        } catch {
            return nil
        }
        return probe.readableBytes == 1 && sink.readableBytes == 0 ? output : nil
    }
}

/// Builds an ordered object where a repeated name turns its value into an array (in order).
/// Allocates nothing beyond the members array unless names repeat.
struct ObjectBuilder {
    private var members: [AuditValue.Member] = []
    /// Later values of repeated names, by member index.
    private var repeats: [Int: [AuditValue]] = [:]
    /// Built once there are many names, so hostile inputs with thousands of pairs stay linear.
    private var positions: [String: Int]?

    mutating func add(_ name: String, _ value: AuditValue) {
        if let existing = position(of: name) {
            repeats[existing, default: []].append(value)
            return
        }
        members.append(.init(name, value))
        if positions != nil {
            positions![name] = members.count - 1
        } else if members.count > 8 {
            var table: [String: Int] = [:]
            for (position, member) in members.enumerated() where table[member.key] == nil { table[member.key] = position }
            positions = table
        }
    }

    private func position(of name: String) -> Int? {
        if let positions { return positions[name] }
        return members.firstIndex { $0.key == name }
    }

    var value: AuditValue {
        if repeats.isEmpty { return .object(members) }
        var result = members
        for (index, more) in repeats { result[index].value = .array([members[index].value] + more) }
        return .object(result)
    }
}

/// The parts of a Content-Type the redactor needs.
struct MediaType {
    enum BodyKind {
        case json, form, multipart
    }

    let type: String
    let parameters: [(String, String)]

    init(_ header: String) {
        let pieces = Self.splitParameters(header)
        type = (pieces.first ?? "").trimmingBlanks().lowercased()
        parameters = pieces.dropFirst().compactMap { piece in
            guard let equals = piece.firstIndex(of: "=") else { return nil }
            let name = piece[..<equals].trimmingBlanks().lowercased()
            var value = piece[piece.index(after: equals)...].trimmingBlanks()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = Self.unquote(String(value.dropFirst().dropLast()))
            }
            return (name, value)
        }
    }

    var bodyKind: BodyKind? {
        switch type {
        case "application/json": return .json
        case "application/x-www-form-urlencoded": return .form
        case "multipart/form-data": return .multipart
        default:
            if type.hasPrefix("application/") && type.hasSuffix("+json") { return .json }
            return nil
        }
    }

    func parameter(_ name: String) -> String? { parameters.first { $0.0 == name }?.1 }

    /// Every value the parameter `name` is given: the RFC 8187 extended `name*` (decoded), the
    /// RFC 2231 continuation `name*0`, `name*1*`, … (joined and decoded), then each plain `name`.
    func parameterValues(_ name: String) -> [String] {
        var values: [String] = []
        for (key, value) in parameters where key == name + "*" { values.append(Self.decodeExtended(value, hasCharset: true)) }
        // Continuations, in the order of their numbers (each section decoded when marked `*`).
        var sections: [(Int, String)] = []
        for (key, value) in parameters where key.hasPrefix(name + "*") {
            var suffix = key.dropFirst(name.count + 1)
            let encoded = suffix.hasSuffix("*")
            if encoded { suffix = suffix.dropLast() }
            guard !suffix.isEmpty, suffix.count <= 3, suffix.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let number = Int(suffix) else { continue }
            sections.append((number, encoded ? Self.decodeExtended(value, hasCharset: number == 0) : value))
        }
        if !sections.isEmpty { values.append(sections.sorted { $0.0 < $1.0 }.map(\.1).joined()) }
        for (key, value) in parameters where key == name { values.append(value) }
        return values
    }

    /// RFC 8187 `charset'lang'percent-encoded` → text (the charset is taken as UTF-8; invalid
    /// UTF-8 becomes U+FFFD). Continuation sections after the first have no `charset'lang'`.
    static func decodeExtended(_ value: String, hasCharset: Bool) -> String {
        var encoded = Substring(value)
        if hasCharset {
            let parts = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count == 3 { encoded = parts[2] }
        }
        return Array(encoded.utf8).withUnsafeBufferPointer { Redactor.percentDecode($0, plusAsSpace: false) }
    }

    /// Splits at `;` outside double quotes.
    static func splitParameters(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var inQuotes = false
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            if inQuotes && character == "\\" {
                current.append(character)
                escaped = true
                continue
            }
            if character == "\"" { inQuotes.toggle() }
            if character == ";" && !inQuotes {
                pieces.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        pieces.append(current)
        return pieces
    }

    /// Removes backslash escapes of a quoted-string's content.
    static func unquote(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var out = ""
        var escaped = false
        for character in text {
            if escaped {
                out.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                out.append(character)
            }
        }
        return out
    }
}

enum UTF8Validation {
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < bytes.count {
            if bytes[index] < 0x80 {
                index += 1
                continue
            }
            let (scalar, length) = JSONWriter.decodeScalar(bytes, at: index)
            if scalar == nil { return false }
            index += length
        }
        return true
    }
}

extension StringProtocol {
    func trimmingBlanks() -> String {
        let blanks: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !blanks($0) }) else { return "" }
        let last = lastIndex(where: { !blanks($0) })!
        return String(self[first...last])
    }
}
