import NIOCore

public enum HTTPVersion: Sendable, Equatable {
    case http1_0
    case http1_1
}

/// Methods the proxy treats specially; everything else is `.other` and forwarded as written.
public enum HTTPMethod: UInt8, Sendable {
    case get, head, post, put, delete, options, patch, connect, trace, other

    /// RFC 9110 §9.2.1: GET, HEAD, OPTIONS and TRACE are safe.
    public var isSafe: Bool {
        switch self {
        case .get, .head, .options, .trace: return true
        default: return false
        }
    }
}

/// Header names the codec itself must recognise (framing, connection management, hop-by-hop).
/// Classified once, while parsing, so later stages never compare strings for them.
public enum KnownHeader: UInt8, Sendable {
    case other
    case host
    case contentLength
    case transferEncoding
    case connection
    case keepAlive
    case proxyConnection
    case te
    case upgrade
    case expect
    case trailer
    case proxyAuthorization
    case proxyAuthenticate

    /// RFC 9110 §7.6.1 hop-by-hop fields, plus framing the proxy always recomputes.
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .upgrade, .transferEncoding,
            .proxyAuthorization, .proxyAuthenticate:
            return true
        default:
            return false
        }
    }
}

/// One header line, as offsets into the bytes of its `HeaderBlock`. The value excludes
/// surrounding whitespace.
public struct HeaderField: Sendable {
    public var nameStart: UInt32
    public var nameLength: UInt32
    public var valueStart: UInt32
    public var valueLength: UInt32
    public var known: KnownHeader

    @inlinable
    public var nameRange: Range<Int> { Int(nameStart)..<Int(nameStart + nameLength) }
    /// `name: value` without the line ending.
    @inlinable
    public var lineRange: Range<Int> { Int(nameStart)..<Int(valueStart + valueLength) }
    @inlinable
    public var valueRange: Range<Int> { Int(valueStart)..<Int(valueStart + valueLength) }
}

/// Parsed header fields with the bytes they point into. Header bytes are never copied into
/// Strings on the request path; the accessors below are for the console, tests and logs.
public struct HeaderBlock: Sendable {
    public let bytes: ByteBuffer
    public var fields: [HeaderField]

    public init(bytes: ByteBuffer, fields: [HeaderField]) {
        self.bytes = bytes
        self.fields = fields
    }

    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeReadableBytes(body)
    }

    public func string(_ range: Range<Int>) -> String {
        bytes.withUnsafeReadableBytes { raw in
            String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self)
        }
    }

    public func name(_ field: HeaderField) -> String { string(field.nameRange) }
    public func value(_ field: HeaderField) -> String { string(field.valueRange) }

    /// All values of a header, in order (case-insensitive name).
    public func values(_ name: String) -> [String] {
        let lower = Array(name.utf8.lazy.map(asciiLowercased))
        return bytes.withUnsafeReadableBytes { raw in
            fields.compactMap { field in
                equalsLowercase(raw, field.nameRange, lower) ? string(field.valueRange) : nil
            }
        }
    }

    public func first(_ name: String) -> String? { values(name).first }

    /// Every (name, value) pair; convenient in tests.
    public var pairs: [(String, String)] {
        fields.map { (name($0), value($0)) }
    }
}

@inlinable
func equalsLowercase(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, _ lower: [UInt8]) -> Bool {
    guard range.count == lower.count else { return false }
    var i = 0
    for index in range {
        if asciiLowercased(raw[index]) != lower[i] { return false }
        i += 1
    }
    return true
}

@inlinable
func equalsLowercase(_ raw: UnsafeRawBufferPointer, _ start: Int, _ count: Int, _ lower: StaticString) -> Bool {
    guard lower.utf8CodeUnitCount == count else { return false }
    let expected = lower.utf8Start
    for i in 0..<count where asciiLowercased(raw[start &+ i]) != expected[i] {
        return false
    }
    return true
}

@inlinable
func classifyHeaderName(_ raw: UnsafeRawBufferPointer, _ start: Int, _ count: Int) -> KnownHeader {
    switch count {
    case 2: return equalsLowercase(raw, start, count, "te") ? .te : .other
    case 4: return equalsLowercase(raw, start, count, "host") ? .host : .other
    case 6: return equalsLowercase(raw, start, count, "expect") ? .expect : .other
    case 7:
        if equalsLowercase(raw, start, count, "upgrade") { return .upgrade }
        if equalsLowercase(raw, start, count, "trailer") { return .trailer }
        return .other
    case 10:
        if equalsLowercase(raw, start, count, "connection") { return .connection }
        if equalsLowercase(raw, start, count, "keep-alive") { return .keepAlive }
        return .other
    case 14: return equalsLowercase(raw, start, count, "content-length") ? .contentLength : .other
    case 16: return equalsLowercase(raw, start, count, "proxy-connection") ? .proxyConnection : .other
    case 17: return equalsLowercase(raw, start, count, "transfer-encoding") ? .transferEncoding : .other
    case 18: return equalsLowercase(raw, start, count, "proxy-authenticate") ? .proxyAuthenticate : .other
    case 19: return equalsLowercase(raw, start, count, "proxy-authorization") ? .proxyAuthorization : .other
    default: return .other
    }
}

extension HTTPMethod {
    /// The method a token names (an HTTP/2 `:method`), by the same rule as a request line's.
    public init(token: String) {
        var token = token
        self = token.withUTF8 { classifyMethod(UnsafeRawBufferPointer($0), 0, $0.count) }
    }
}

@inlinable
func classifyMethod(_ raw: UnsafeRawBufferPointer, _ start: Int, _ count: Int) -> HTTPMethod {
    // Methods are case-sensitive (RFC 9110 §9.1): compare exactly.
    @inline(__always) func equals(_ name: StaticString) -> Bool {
        guard name.utf8CodeUnitCount == count else { return false }
        let expected = name.utf8Start
        for i in 0..<count where raw[start &+ i] != expected[i] { return false }
        return true
    }
    switch count {
    case 3: return equals("GET") ? .get : equals("PUT") ? .put : .other
    case 4: return equals("POST") ? .post : equals("HEAD") ? .head : .other
    case 5: return equals("PATCH") ? .patch : equals("TRACE") ? .trace : .other
    case 6: return equals("DELETE") ? .delete : .other
    case 7: return equals("OPTIONS") ? .options : equals("CONNECT") ? .connect : .other
    default: return .other
    }
}

/// What the `Connection` header(s) said.
public struct ConnectionOptions: Sendable, Equatable {
    public var close = false
    public var keepAlive = false
    public var upgrade = false
    /// Other tokens: header names the sender wants removed at this hop.
    public var nominatesOtherHeaders = false

    public init() {}
}

/// How a message body is delimited (RFC 9112 §6).
public enum BodyFraming: Sendable, Equatable {
    case none
    case contentLength(Int64)
    case chunked
    /// Responses only: the body ends when the connection closes.
    case untilClose
}

public struct RequestHead: Sendable {
    public var block: HeaderBlock
    public var method: HTTPMethod
    public var methodRange: Range<Int>
    public var targetRange: Range<Int>
    public var version: HTTPVersion
    public var framing: BodyFraming
    public var connection: ConnectionOptions
    public var expectContinue: Bool
    /// Index into `block.fields` of the single Host field, if any.
    public var hostIndex: Int?
    /// Index into `block.fields` of the Upgrade field, if any.
    public var upgradeIndex: Int?

    /// HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 only when asked.
    public var keepAlive: Bool {
        switch version {
        case .http1_1: return !connection.close
        case .http1_0: return connection.keepAlive && !connection.close
        }
    }

    public var methodString: String { block.string(methodRange) }
    public var target: String { block.string(targetRange) }
    public var host: String? { hostIndex.map { block.value(block.fields[$0]) } }
}

public struct ResponseHead: Sendable {
    public var block: HeaderBlock
    public var version: HTTPVersion
    public var status: Int
    public var reasonRange: Range<Int>
    public var framing: BodyFraming
    public var connection: ConnectionOptions

    /// Whether the connection this response arrived on may carry another exchange.
    public var keepAlive: Bool {
        if case .untilClose = framing { return false }
        switch version {
        case .http1_1: return !connection.close
        case .http1_0: return connection.keepAlive && !connection.close
        }
    }

    public var reason: String { block.string(reasonRange) }
}
