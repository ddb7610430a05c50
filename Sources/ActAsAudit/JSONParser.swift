/// A strict RFC 8259 parser from bytes to `AuditValue`. Used for request bodies (with a redactor:
/// sensitive members are validated but replaced, strings scrubbed of tokens) and for reading
/// log lines back (without one). Invalid UTF-8, lone surrogates escapes aside, is an error.
struct JSONParser {
    enum Failure: Error, Equatable {
        case invalid
        case tooDeep
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private let redactor: Redactor?
    private let maxDepth: Int

    private init(bytes: UnsafeBufferPointer<UInt8>, redactor: Redactor?, maxDepth: Int) {
        self.bytes = bytes
        self.redactor = redactor
        self.maxDepth = maxDepth
    }

    static let defaultMaxDepth = 64

    /// Parses exactly one JSON value (surrounding whitespace allowed). `startDepth` is the nesting
    /// the document already sits at (a document inside a string of another).
    static func parse(
        _ bytes: UnsafeBufferPointer<UInt8>, redactor: Redactor? = nil, maxDepth: Int = defaultMaxDepth, startDepth: Int = 0
    ) throws(Failure) -> AuditValue {
        var parser = JSONParser(bytes: bytes, redactor: redactor, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: startDepth)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw .invalid }
        return value
    }

    static func parse(
        _ bytes: [UInt8], redactor: Redactor? = nil, maxDepth: Int = defaultMaxDepth, startDepth: Int = 0
    ) throws(Failure) -> AuditValue {
        let result: Result<AuditValue, Failure> = bytes.withUnsafeBufferPointer { buffer in
            do throws(Failure) {
                return .success(try parse(buffer, redactor: redactor, maxDepth: maxDepth, startDepth: startDepth))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    @inline(__always)
    private mutating func expectLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw .invalid }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] { throw .invalid }
        index += count
    }

    private mutating func parseValue(depth: Int) throws(Failure) -> AuditValue {
        guard index < bytes.count else { throw .invalid }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw .tooDeep }
            return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw .tooDeep }
            return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            let text = try parseString()
            return .string(redactor?.redactText(text, depth: depth) ?? text)
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        default:
            let start = index
            guard JSONNumber.scan(bytes, &index) else { throw .invalid }
            let literal = UnsafeBufferPointer(rebasing: bytes[start..<index])
            if let integer = Self.integer(literal) { return .integer(integer) }
            return .number(String(decoding: literal, as: UTF8.self))
        }
    }

    /// The value of a plain integer literal (no fraction or exponent) that fits in Int64.
    private static func integer(_ literal: UnsafeBufferPointer<UInt8>) -> Int64? {
        var negative = false
        var position = 0
        if literal.first == UInt8(ascii: "-") {
            negative = true
            position = 1
        }
        guard literal.count - position <= 18 else { return nil }  // always fits
        var value: Int64 = 0
        while position < literal.count {
            let byte = literal[position]
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + Int64(byte - 0x30)
            position += 1
        }
        if negative && value == 0 { return nil }  // keep "-0" as written
        return negative ? -value : value
    }

    private mutating func parseObject(depth: Int) throws(Failure) -> AuditValue {
        index += 1  // {
        var members: [AuditValue.Member] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw .invalid }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw .invalid }
            index += 1
            skipWhitespace()
            if let redactor, redactor.isSensitiveName(key) {
                _ = try parseValue(depth: depth)  // still validated: malformed JSON is never half-logged
                members.append(.init(redactor.scrubTokens(key), .string(Redactor.placeholder)))
            } else {
                let value = try parseValue(depth: depth)
                members.append(.init(redactor?.scrubTokens(key) ?? key, value))
            }
            skipWhitespace()
            guard index < bytes.count else { throw .invalid }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { throw .invalid }
            index += 1
            return .object(redactor?.redactingPairValues(members) ?? members)
        }
    }

    private mutating func parseArray(depth: Int) throws(Failure) -> AuditValue {
        index += 1  // [
        var elements: [AuditValue] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw .invalid }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw .invalid }
            index += 1
            return .array(elements)
        }
    }

    /// Parses a string at `index` (which is at the opening quote).
    private mutating func parseString() throws(Failure) -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw .invalid }
            if byte >= 0x80 {
                let (scalar, length) = JSONWriter.decodeScalar(bytes, at: index)
                guard scalar != nil else { throw .invalid }
                index += length
            } else {
                index += 1
            }
        }
        guard index < bytes.count else { throw .invalid }
        // Slow path: decode escapes.
        var decoded: [UInt8] = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: decoded, as: UTF8.self)
            }
            if byte < 0x20 { throw .invalid }
            if byte == UInt8(ascii: "\\") {
                index += 1
                guard index < bytes.count else { throw .invalid }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): decoded.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): decoded.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): decoded.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        // A high surrogate needs a low one; anything else becomes U+FFFD.
                        if index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                            let saved = index
                            index += 2
                            let low = try hex4()
                            if (0xDC00...0xDFFF).contains(low) {
                                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                index = saved
                                scalar = 0xFFFD
                            }
                        } else {
                            scalar = 0xFFFD
                        }
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        scalar = 0xFFFD
                    }
                    appendUTF8(Unicode.Scalar(scalar) ?? "\u{FFFD}", to: &decoded)
                default:
                    throw .invalid
                }
                continue
            }
            if byte >= 0x80 {
                let (scalar, length) = JSONWriter.decodeScalar(bytes, at: index)
                guard scalar != nil else { throw .invalid }
                decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<index + length]))
                index += length
            } else {
                decoded.append(byte)
                index += 1
            }
        }
        throw .invalid
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .invalid }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw .invalid
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}

@inline(__always)
func appendUTF8(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
    UTF8.encode(scalar) { out.append($0) }
}
