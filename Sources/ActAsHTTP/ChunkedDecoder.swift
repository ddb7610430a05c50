import NIOCore

/// Incremental decoder for `Transfer-Encoding: chunked` (RFC 9112 §7.1), strict:
///
/// - chunk-size is 1–16 hex digits, nothing else (`0x10`, `+5`, `-1`, spaces inside → 400);
/// - after the size only optional whitespace and `;` extensions, which may not hold control
///   characters (a `\r` in an extension is how some parsers get desynchronised);
/// - every line ends in CRLF; the data is followed by exactly CRLF;
/// - the body may not exceed `maxBody` (413, decided as soon as a chunk size says so);
/// - trailers are parsed with the same strict field rules as a head.
///
/// Data is handed out as slices of the input buffer: no copies.
public struct ChunkedDecoder: Sendable {
    public enum Event: Sendable {
        /// Body bytes (a slice of the input).
        case data(ByteBuffer)
        /// The body is complete. Trailer fields, if any, with the bytes they point into.
        case end(trailers: HeaderBlock?)
    }

    enum State: Sendable {
        case size(value: UInt64, digits: Int)
        /// `chunk-ext = *( ";" name [ "=" ( token / quoted-string ) ] )`, no whitespace
        /// (llhttp refuses it too, and every accepted variation is a parser disagreement risk).
        case extensionName(started: Bool)
        case extensionValue(started: Bool)
        case extensionQuoted(escaped: Bool)
        case extensionEnd
        case sizeLF
        case data(remaining: UInt64)
        case dataCR
        case dataLF
        case trailers
        case done
    }

    /// A chunk-size line with extensions is refused past this length.
    static let maxChunkLine = 4096

    var state: State = .size(value: 0, digits: 0)
    var lineLength = 0
    var pendingSize: UInt64 = 0
    var total: UInt64 = 0
    let maxBody: UInt64
    var trailerParser: HeadParser

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.maxBody = UInt64(max(0, limits.maxBody))
        self.trailerParser = HeadParser(kind: .trailers, limits: limits)
    }

    public var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Total body bytes decoded so far.
    public var bodyBytes: UInt64 { total }

    /// Consumes bytes from `buffer` and returns the next event, or `nil` when it needs more
    /// input (everything given has then been consumed or is held for the trailers).
    public mutating func next(_ buffer: inout ByteBuffer) throws(HTTPParseError) -> Event? {
        while true {
            switch state {
            case .data(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let take = Int(min(UInt64(buffer.readableBytes), remaining))
                let slice = buffer.readSlice(length: take)!
                state = remaining == UInt64(take) ? .dataCR : .data(remaining: remaining - UInt64(take))
                return .data(slice)
            case .trailers:
                let length: Int?
                do {
                    length = try trailerParser.parse(buffer)
                } catch {
                    throw HTTPParseError.badRequest("invalid trailer: \(error.reason)")
                }
                guard let length else { return nil }
                let bytes = buffer.readSlice(length: length)!
                state = .done
                let block = trailerParser.finishTrailers(bytes)
                return .end(trailers: block.fields.isEmpty ? nil : block)
            case .done:
                return nil
            default:
                guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
                if let event = try step(byte) { return event }
            }
        }
    }

    /// One byte of framing (size lines and the CRLF after data).
    private mutating func step(_ byte: UInt8) throws(HTTPParseError) -> Event? {
        switch state {
        case .size(let value, let digits):
            lineLength += 1
            if let digit = hexDigitValue(byte) {
                guard digits < 16 else { throw HTTPParseError.badRequest("chunk size too long") }
                state = .size(value: value << 4 | UInt64(digit), digits: digits + 1)
                return nil
            }
            guard digits > 0 else { throw HTTPParseError.badRequest("invalid chunk size") }
            try startChunk(size: value)
            return try afterSize(byte)
        case .extensionName(let started):
            try countExtensionByte()
            if isTokenChar(byte) {
                state = .extensionName(started: true)
            } else if started, byte == UInt8(ascii: "=") {
                state = .extensionValue(started: false)
            } else if started {
                try endOfExtension(byte)
            } else {
                throw HTTPParseError.badRequest("invalid chunk extension")
            }
            return nil
        case .extensionValue(let started):
            try countExtensionByte()
            if isTokenChar(byte) {
                state = .extensionValue(started: true)
            } else if !started, byte == UInt8(ascii: "\"") {
                state = .extensionQuoted(escaped: false)
            } else if started {
                try endOfExtension(byte)
            } else {
                throw HTTPParseError.badRequest("invalid chunk extension")
            }
            return nil
        case .extensionQuoted(let escaped):
            try countExtensionByte()
            guard byte == ASCII.tab || (byte >= 0x20 && byte != 0x7F) else {
                throw HTTPParseError.badRequest("invalid byte in chunk extension")
            }
            if escaped {
                state = .extensionQuoted(escaped: false)
            } else if byte == UInt8(ascii: "\\") {
                state = .extensionQuoted(escaped: true)
            } else if byte == UInt8(ascii: "\"") {
                state = .extensionEnd
            }
            return nil
        case .extensionEnd:
            try countExtensionByte()
            try endOfExtension(byte)
            return nil
        case .sizeLF:
            guard byte == ASCII.lf else { throw HTTPParseError.badRequest("chunk size line not ended by CRLF") }
            lineLength = 0
            state = pendingSize == 0 ? .trailers : .data(remaining: pendingSize)
            return nil
        case .dataCR:
            guard byte == ASCII.cr else { throw HTTPParseError.badRequest("chunk data not followed by CRLF") }
            state = .dataLF
            return nil
        case .dataLF:
            guard byte == ASCII.lf else { throw HTTPParseError.badRequest("chunk data not followed by CRLF") }
            state = .size(value: 0, digits: 0)
            return nil
        case .data, .trailers, .done:
            preconditionFailure("handled in next(_:)")
        }
    }

    /// `chunk-size ( ";" ext | CRLF )`
    private mutating func afterSize(_ byte: UInt8) throws(HTTPParseError) -> Event? {
        switch byte {
        case ASCII.cr: state = .sizeLF
        case ASCII.semicolon: state = .extensionName(started: false)
        default: throw HTTPParseError.badRequest("invalid chunk size")
        }
        return nil
    }

    private mutating func endOfExtension(_ byte: UInt8) throws(HTTPParseError) {
        switch byte {
        case ASCII.cr: state = .sizeLF
        case ASCII.semicolon: state = .extensionName(started: false)
        default: throw HTTPParseError.badRequest("invalid byte in chunk extension")
        }
    }

    private mutating func countExtensionByte() throws(HTTPParseError) {
        lineLength += 1
        guard lineLength <= Self.maxChunkLine else { throw HTTPParseError.badRequest("chunk extension too long") }
    }

    private mutating func startChunk(size: UInt64) throws(HTTPParseError) {
        pendingSize = size
        guard size > 0 else { return }
        guard size <= maxBody, total + size <= maxBody else { throw HTTPParseError.bodyTooLarge }
        total += size
    }
}

/// Writes chunked framing for bodies the proxy re-encodes.
public enum ChunkedEncoding {
    /// `size-in-hex CRLF`
    @inlinable
    public static func writeChunkHeader(_ size: Int, into buffer: inout ByteBuffer) {
        precondition(size > 0)
        var digits = 0
        var probe = size
        while probe > 0 { digits += 1; probe >>= 4 }
        buffer.reserveCapacity(minimumWritableBytes: digits + 2)
        var shift = (digits - 1) * 4
        while shift >= 0 {
            let nibble = UInt8((size >> shift) & 0xF)
            buffer.writeInteger(nibble < 10 ? nibble &+ 0x30 : nibble &+ 0x57)
            shift -= 4
        }
        buffer.writeInteger(UInt16(0x0D0A))
    }

    @inlinable
    public static func writeCRLF(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(0x0D0A))
    }
}
