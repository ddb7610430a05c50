/// Hand-written JSON output for log lines. No Foundation: this runs once per record (on an event
/// loop or the writer thread) and must be cheap and byte-for-byte deterministic (the hash chain
/// covers the bytes).
enum JSONWriter {
    @inline(__always)
    static func lowerHexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ (nibble &- 10)
    }

    /// Writes `key` then `text` as a JSON string, with JWTs, bearer and API tokens replaced (one
    /// pass over the bytes when there are none, which is the usual case). A short value goes out
    /// with its key in one append.
    @inline(__always)
    static func writeScrubbedMember(_ key: StaticString, _ text: String, into out: inout [UInt8]) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in
            if let scrubbed = Redactor.scrubTokens(bytes: bytes) {
                writeRaw(key, into: &out)
                writeString(Redactor.settled(scrubbed), into: &out)
                return
            }
            // Escaping turns a byte into at most 6 (`\u00XX`).
            let bound = key.utf8CodeUnitCount + 2 + 6 * bytes.count
            if bound <= ShortRun.stackLimit {
                out.appendShortRun(capacity: bound) { run in
                    run.put(key)
                    run.put(UInt8(ascii: "\""))
                    writeEscaped(bytes, into: &run)
                    run.put(UInt8(ascii: "\""))
                }
            } else {
                writeRaw(key, into: &out)
                out.append(UInt8(ascii: "\""))
                writeEscaped(bytes, into: &out)
                out.append(UInt8(ascii: "\""))
            }
        }
        if done == nil {
            writeRaw(key, into: &out)
            writeString(Redactor.scrubOnce(text).map(Redactor.settled) ?? text, into: &out)
        }
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
    static func writeEscaped<Sink: JSONSink>(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout Sink) {
        var index = 0
        var runStart = 0
        let count = bytes.count
        @inline(__always) func flushRun(_ end: Int) {
            if end > runStart { out.put(UnsafeBufferPointer(rebasing: bytes[runStart..<end])) }
        }
        while index < count {
            let byte = bytes[index]
            if byte >= 0x20 && byte < 0x7F {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                    flushRun(index)
                    out.put(UInt8(ascii: "\\"))
                    out.put(byte)
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
    static func writeUnicodeEscape<Sink: JSONSink>(_ scalar: UInt32, into out: inout Sink) {
        if scalar > 0xFFFF {
            let offset = scalar - 0x10000
            writeUTF16Escape(UInt16(0xD800 + (offset >> 10)), into: &out)
            writeUTF16Escape(UInt16(0xDC00 + (offset & 0x3FF)), into: &out)
        } else {
            writeUTF16Escape(UInt16(scalar), into: &out)
        }
    }

    @inline(__always)
    private static func writeUTF16Escape<Sink: JSONSink>(_ unit: UInt16, into out: inout Sink) {
        out.put(UInt8(ascii: "\\"))
        out.put(UInt8(ascii: "u"))
        out.put(lowerHexDigit(UInt8(truncatingIfNeeded: unit >> 12) & 0xF))
        out.put(lowerHexDigit(UInt8(truncatingIfNeeded: unit >> 8) & 0xF))
        out.put(lowerHexDigit(UInt8(truncatingIfNeeded: unit >> 4) & 0xF))
        out.put(lowerHexDigit(UInt8(truncatingIfNeeded: unit) & 0xF))
    }

    @inline(__always)
    static func writeInteger<T: BinaryInteger>(_ value: T, into out: inout [UInt8]) {
        out.appendShortRun { $0.putInteger(value) }
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

/// A short run of a line (keys, numbers, a timestamp, hex digits), composed on the stack and
/// appended to the line with one call. Written piece by piece into a `[UInt8]`, each piece
/// pays `append`'s uniqueness and capacity checks: in the micro-benchmark those made up about a
/// third of the time to encode a plain request's record on its event loop.
struct ShortRun: JSONSink {
    /// Runs up to this size are composed on the stack (`withUnsafeTemporaryAllocation` allocates
    /// larger ones on the heap, which would cost more than the appends saved).
    static let stackLimit = 1024
    private let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    private(set) var count = 0

    fileprivate init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    /// Callers size the run from an upper bound of what they write; overrunning it is a bug,
    /// and stops here rather than writing past the buffer.
    @inline(__always)
    private mutating func reserve(_ length: Int) -> UnsafeMutablePointer<UInt8> {
        precondition(count + length <= capacity, "ShortRun overflow")
        defer { count += length }
        return base + count
    }

    @inline(__always)
    mutating func put(_ byte: UInt8) {
        reserve(1).initialize(to: byte)
    }

    /// An ASCII literal of ours (keys, punctuation): no escaping needed.
    @inline(__always)
    mutating func put(_ text: StaticString) {
        let length = text.utf8CodeUnitCount
        reserve(length).initialize(from: text.utf8Start, count: length)
    }

    @inline(__always)
    mutating func put(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress else { return }
        UnsafeMutableRawPointer(reserve(bytes.count)).copyMemory(from: source, byteCount: bytes.count)
    }

    @inline(__always)
    mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) {
        put(UnsafeRawBufferPointer(bytes))
    }

    /// Exactly `length` bytes that `body` writes.
    @inline(__always)
    mutating func put(length: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        body(UnsafeMutableRawBufferPointer(start: reserve(length), count: length))
    }

    @inline(__always)
    mutating func putInteger<T: BinaryInteger>(_ value: T) {
        if value < 0 {
            put(UInt8(ascii: "-"))
            putUnsigned(UInt64(value.magnitude))
        } else {
            putUnsigned(UInt64(value))
        }
    }

    @inline(__always)
    mutating func putUnsigned(_ value: UInt64) {
        if value < 10 {
            put(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let target = reserve(digits)
        var remaining = value
        for position in stride(from: digits - 1, through: 0, by: -1) {
            target[position] = UInt8(ascii: "0") &+ UInt8(remaining % 10)
            remaining /= 10
        }
    }

    /// Nanoseconds as milliseconds with up to three decimals (at least one), never an exponent:
    /// 3_200_000 → `3.2`, 57_000 → `0.057`, 0 → `0.0`. Rounded to the microsecond.
    mutating func putMilliseconds(nanoseconds: Int64) {
        let microseconds = (UInt64(max(nanoseconds, 0)) + 500) / 1000
        putUnsigned(microseconds / 1000)
        put(UInt8(ascii: "."))
        let fraction = microseconds % 1000
        let tenths = UInt8(fraction / 100), hundredths = UInt8(fraction / 10 % 10), thousandths = UInt8(fraction % 10)
        put(UInt8(ascii: "0") &+ tenths)
        if hundredths != 0 || thousandths != 0 { put(UInt8(ascii: "0") &+ hundredths) }
        if thousandths != 0 { put(UInt8(ascii: "0") &+ thousandths) }
    }
}

/// Where JSON text goes: a line's `[UInt8]`, or a `ShortRun` composed on the stack.
protocol JSONSink {
    mutating func put(_ byte: UInt8)
    mutating func put(_ bytes: UnsafeBufferPointer<UInt8>)
}

extension Array: JSONSink where Element == UInt8 {
    @inline(__always)
    mutating func put(_ byte: UInt8) { append(byte) }

    @inline(__always)
    mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) { append(contentsOf: bytes) }

    /// Composes a run of at most `capacity` bytes on the stack and appends it.
    @inline(__always)
    mutating func appendShortRun(capacity: Int = 256, _ body: (inout ShortRun) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            var run = ShortRun(base: buffer.baseAddress!, capacity: capacity)
            body(&run)
            append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress!, count: run.count))
        }
    }
}

