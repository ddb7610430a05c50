/// Hand-written JSON output for log lines. No Foundation: this runs once per record (on an event
/// loop or the writer thread) and must be cheap and byte-for-byte deterministic (the hash chain
/// covers the bytes).
enum JSONWriter {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    @inline(__always)
    static func lowerHexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ (nibble &- 10)
    }

    /// Writes `text` as a JSON string with JWTs, bearer and API tokens replaced (one pass over
    /// the bytes when there are none, which is the usual case).
    @inline(__always)
    static func writeScrubbedString(_ text: String, into out: inout [UInt8]) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in
            if let scrubbed = Redactor.scrubTokens(bytes: bytes) {
                writeString(scrubbed, into: &out)
            } else {
                out.append(UInt8(ascii: "\""))
                writeEscaped(bytes, into: &out)
                out.append(UInt8(ascii: "\""))
            }
        }
        if done == nil { writeString(Redactor.scrubTokens(bytes: Array(text.utf8)) ?? text, into: &out) }
    }

    @inline(__always)
    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if let done: Void = text.utf8.withContiguousStorageIfAvailable({ writeEscaped($0, into: &out) }) {
            _ = done
        } else {
            let bytes = Array(text.utf8)
            bytes.withUnsafeBufferPointer { writeEscaped($0, into: &out) }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Writes an ASCII literal we produce ourselves (keys, enum raw values): no escaping needed.
    @inline(__always)
    static func writeRaw(_ text: StaticString, into out: inout [UInt8]) {
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    /// Escapes so that one record is always one line, a terminal shows it literally, and it cannot
    /// forge another record: `"`, `\`, C0 controls, DEL, C1 controls, line/paragraph separators,
    /// bidi controls and other invisible format characters become `\uXXXX`.
    /// The input is valid UTF-8 (it comes from a `String`); anything else would become U+FFFD.
    static func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        var index = 0
        var runStart = 0
        let count = bytes.count
        @inline(__always) func flushRun(_ end: Int) {
            if end > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<end])) }
        }
        while index < count {
            let byte = bytes[index]
            if byte >= 0x20 && byte < 0x7F {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                    flushRun(index)
                    out.append(UInt8(ascii: "\\"))
                    out.append(byte)
                    runStart = index + 1
                }
                index += 1
                continue
            }
            if byte < 0x80 {  // C0 control or DEL
                flushRun(index)
                writeUnicodeEscape(UInt32(byte), into: &out)
                index += 1
                runStart = index
                continue
            }
            // Multi-byte sequence: decode the scalar to decide.
            let (scalar, length) = decodeScalar(bytes, at: index)
            if let scalar, !mustEscape(scalar) {
                index += length
                continue
            }
            flushRun(index)
            writeUnicodeEscape(scalar ?? 0xFFFD, into: &out)
            index += length
            runStart = index
        }
        flushRun(count)
    }

    /// Code points that are invisible or steer a terminal/editor: C1 controls, soft hyphen,
    /// Arabic/Syriac format marks, zero-width characters, LRM/RLM, line and paragraph separators,
    /// bidi embeddings/overrides/isolates, invisible operators, BOM, interlinear annotations,
    /// noncharacters U+FFFE/U+FFFF and the tag block (which can hide text).
    @inline(__always)
    static func mustEscape(_ scalar: UInt32) -> Bool {
        switch scalar {
        case 0x80...0x9F, 0xAD, 0x600...0x605, 0x61C, 0x6DD, 0x70F, 0x890...0x891, 0x8E2, 0x180E,
            0x200B...0x200F, 0x2028...0x202E, 0x2060...0x206F, 0xFEFF, 0xFFF9...0xFFFB, 0xFFFE, 0xFFFF,
            0x110BD, 0x110CD, 0x13430...0x1343F, 0x1BCA0...0x1BCA3, 0x1D173...0x1D17A, 0xE0000...0xE007F:
            return true
        default:
            return false
        }
    }

    /// Decodes one UTF-8 scalar starting at a non-ASCII byte; nil (and length 1) for invalid bytes.
    @inline(__always)
    static func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (UInt32?, Int) {
        let lead = bytes[index]
        let length: Int
        var value: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; value = UInt32(lead & 0x1F)
        case 0xE0...0xEF: length = 3; value = UInt32(lead & 0x0F)
        case 0xF0...0xF4: length = 4; value = UInt32(lead & 0x07)
        default: return (nil, 1)
        }
        guard index + length <= bytes.count else { return (nil, 1) }
        for offset in 1..<length {
            let next = bytes[index + offset]
            guard next & 0xC0 == 0x80 else { return (nil, 1) }
            value = value << 6 | UInt32(next & 0x3F)
        }
        // Reject overlong forms, surrogates and values beyond U+10FFFF.
        let minimum: UInt32 = length == 2 ? 0x80 : (length == 3 ? 0x800 : 0x10000)
        guard value >= minimum, value <= 0x10FFFF, !(0xD800...0xDFFF).contains(value) else { return (nil, 1) }
        return (value, length)
    }

    @inline(__always)
    static func writeUnicodeEscape(_ scalar: UInt32, into out: inout [UInt8]) {
        if scalar > 0xFFFF {
            let offset = scalar - 0x10000
            writeUTF16Escape(UInt16(0xD800 + (offset >> 10)), into: &out)
            writeUTF16Escape(UInt16(0xDC00 + (offset & 0x3FF)), into: &out)
        } else {
            writeUTF16Escape(UInt16(scalar), into: &out)
        }
    }

    @inline(__always)
    private static func writeUTF16Escape(_ unit: UInt16, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "u"))
        out.append(hexDigits[Int(unit >> 12) & 0xF])
        out.append(hexDigits[Int(unit >> 8) & 0xF])
        out.append(hexDigits[Int(unit >> 4) & 0xF])
        out.append(hexDigits[Int(unit) & 0xF])
    }

    @inline(__always)
    static func writeInteger<T: BinaryInteger>(_ value: T, into out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            writeUnsigned(UInt64(value.magnitude), into: &out)
        } else {
            writeUnsigned(UInt64(value), into: &out)
        }
    }

    @inline(__always)
    static func writeUnsigned(_ value: UInt64, into out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes of scratch, no heap
        withUnsafeMutableBytes(of: &digits) { scratch in
            var position = scratch.count
            var remaining = value
            while remaining > 0 {
                position -= 1
                scratch[position] = UInt8(ascii: "0") &+ UInt8(remaining % 10)
                remaining /= 10
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[position...]))
        }
    }

    /// Nanoseconds as milliseconds with up to three decimals (at least one), never an exponent:
    /// 3_200_000 → `3.2`, 57_000 → `0.057`, 0 → `0.0`. Rounded to the microsecond.
    static func writeMilliseconds(nanoseconds: Int64, into out: inout [UInt8]) {
        let microseconds = (UInt64(max(nanoseconds, 0)) + 500) / 1000
        writeUnsigned(microseconds / 1000, into: &out)
        out.append(UInt8(ascii: "."))
        let fraction = microseconds % 1000
        let tenths = UInt8(fraction / 100), hundredths = UInt8(fraction / 10 % 10), thousandths = UInt8(fraction % 10)
        out.append(UInt8(ascii: "0") &+ tenths)
        if hundredths != 0 || thousandths != 0 { out.append(UInt8(ascii: "0") &+ hundredths) }
        if thousandths != 0 { out.append(UInt8(ascii: "0") &+ thousandths) }
    }

    static func writeValue(_ value: AuditValue, into out: inout [UInt8]) {
        switch value {
        case .null: writeRaw("null", into: &out)
        case .bool(let flag): flag ? writeRaw("true", into: &out) : writeRaw("false", into: &out)
        case .integer(let number): writeInteger(number, into: &out)
        case .number(let literal):
            if JSONNumber.isValidLiteral(literal) {
                out.append(contentsOf: literal.utf8)
            } else {
                writeString(literal, into: &out)
            }
        case .string(let text): writeString(text, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                writeValue(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (position, member) in members.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                writeValue(member.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

}

enum JSONNumber {
    /// RFC 8259 number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    static func isValidLiteral(_ literal: String) -> Bool {
        let bytes = Array(literal.utf8)
        return bytes.withUnsafeBufferPointer { buffer in
            var index = 0
            return scan(buffer, &index) && index == buffer.count
        }
    }

    /// Advances `index` over a number; false if none is there.
    static func scan(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> Bool {
        @inline(__always) func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        var i = index
        if i < bytes.count && bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else { return false }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while isDigit(i) { i += 1 }
        }
        if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { return false }
            while isDigit(i) { i += 1 }
        }
        if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard isDigit(i) else { return false }
            while isDigit(i) { i += 1 }
        }
        index = i
        return true
    }
}
