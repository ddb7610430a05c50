/// `multipart/form-data` (RFC 7578) → object `field name → value`. Text fields become strings;
/// files (a `filename` parameter) and parts of other types become
/// `{"filename":…,"content_type":…,"bytes":N}` (contents never logged); JSON parts are parsed and
/// redacted. nil when the body is not complete, well-formed multipart.
enum MultipartParser {
    static func parse(_ body: UnsafeBufferPointer<UInt8>, boundary: [UInt8], redactor: Redactor) -> AuditValue? {
        let delimiter: [UInt8] = Array("--".utf8) + boundary
        let lineDelimiter: [UInt8] = Array("\r\n".utf8) + delimiter
        // The first delimiter opens the body, or ends a preamble.
        var position: Int
        if starts(body, with: delimiter, at: 0) {
            position = delimiter.count
        } else if let found = find(lineDelimiter, in: body, from: 0) {
            position = found + lineDelimiter.count
        } else {
            return nil
        }
        var parts: [Part] = []
        while true {
            if starts(body, with: Array("--".utf8), at: position) { return build(parts, redactor: redactor) }  // close delimiter
            while position < body.count && (body[position] == 0x20 || body[position] == 0x09) { position += 1 }
            guard starts(body, with: Array("\r\n".utf8), at: position) else { return nil }
            position += 2
            // Part headers end at an empty line (immediately, when the part has none).
            let headerEnd: Int
            let contentStart: Int
            if starts(body, with: Array("\r\n".utf8), at: position) {
                headerEnd = position
                contentStart = position + 2
            } else if let found = find(Array("\r\n\r\n".utf8), in: body, from: position) {
                headerEnd = found
                contentStart = found + 4
            } else {
                return nil
            }
            guard let contentEnd = find(lineDelimiter, in: body, from: contentStart) else { return nil }
            let headers = String(decoding: UnsafeBufferPointer(rebasing: body[position..<headerEnd]), as: UTF8.self)
            let content = UnsafeBufferPointer(rebasing: body[contentStart..<contentEnd])
            parts.append(part(headers: headers, content: content, redactor: redactor))
            position = contentEnd + lineDelimiter.count
        }
    }

    /// One part as it may be logged. `text` is a text field's content, for the key/value pair rule.
    private struct Part {
        var name: String
        var value: AuditValue
        var text: String? = nil
    }

    private static func build(_ parts: [Part], redactor: Redactor) -> AuditValue {
        let pairValues = redactor.pairValuePositions(names: parts.map(\.name), values: parts.map(\.text))
        var builder = ObjectBuilder()
        for (position, part) in parts.enumerated() {
            builder.add(part.name, pairValues.contains(position) ? .string(Redactor.placeholder) : part.value)
        }
        return builder.value
    }

    private static func part(headers: String, content: UnsafeBufferPointer<UInt8>, redactor: Redactor) -> Part {
        // Every Content-Disposition counts (FuzzMultipart found that only the last did): an app
        // may read the first, and split lines at CRLF only or at a bare LF or CR too (both
        // readings are taken).
        var dispositions: [MediaType] = []
        var contentType: MediaType?
        var contentTypeText: String?
        let lines = headers.split(separator: "\r\n") + headers.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" || $0 == "\r" })
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingBlanks().lowercased()
            let value = String(line[line.index(after: colon)...]).trimmingBlanks()
            if name == "content-disposition" {
                dispositions.append(MediaType(value))
            } else if name == "content-type" {
                contentType = MediaType(value)
                contentTypeText = value
            }
        }
        // Every way the name can be given (`name`, RFC 2231/8187 `name*` and `name*0…`
        // continuations, repeated parameters) may be what the app reads: any of them naming a
        // secret redacts the part. The extended form, when present, is the name logged.
        let names = dispositions.flatMap { $0.parameterValues("name") }
        let name = names.first ?? ""
        let filename = dispositions.lazy.compactMap { $0.parameterValues("filename").first }.first
        let loggedName = redactor.scrubTokens(name)
        if redactor.isSensitiveName(name) || names.contains(where: redactor.containsRedactKey) {
            return Part(name: loggedName, value: .string(Redactor.placeholder))
        }
        func metadata() -> AuditValue {
            var members: [AuditValue.Member] = []
            if let filename { members.append(.init("filename", .string(redactor.scrubTokens(filename)))) }
            if let contentTypeText {
                members.append(.init("content_type", .string(redactor.scrubTokens(String(contentTypeText.prefix(200))))))
            }
            members.append(.init("bytes", .integer(Int64(content.count))))
            return .object(members)
        }
        let type = contentType?.type ?? ""
        if filename != nil {
            return Part(name: loggedName, value: metadata())
        } else if type.isEmpty || type == "text/plain" {
            if UTF8Validation.isValid(content) {
                let text = String(decoding: content, as: UTF8.self)
                return Part(name: loggedName, value: .string(redactor.redactText(text)), text: text)
            }
            return Part(name: loggedName, value: .object([.init("unparsed", .bool(true)), .init("bytes", .integer(Int64(content.count)))]))
        } else if contentType?.bodyKind == .json, UTF8Validation.isValid(content),
            let value = try? JSONParser.parse(content, redactor: redactor)
        {
            return Part(name: loggedName, value: value)
        }
        return Part(name: loggedName, value: metadata())
    }

    private static func starts(_ body: UnsafeBufferPointer<UInt8>, with prefix: [UInt8], at position: Int) -> Bool {
        guard position >= 0, position + prefix.count <= body.count else { return false }
        for offset in 0..<prefix.count where body[position + offset] != prefix[offset] { return false }
        return true
    }

    static func find(_ needle: [UInt8], in body: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard let first = needle.first, body.count >= needle.count else { return nil }
        var position = max(start, 0)
        while position + needle.count <= body.count {
            if body[position] == first && starts(body, with: needle, at: position) { return position }
            position += 1
        }
        return nil
    }
}
