/// Which `Host` (or absolute-form authority) the proxy serves, and the canonical spelling it
/// forwards as `X-Forwarded-Host` and signs as the assertion's issuer (SPEC §3
/// `listen.public_hosts`, §5). Whatever passes here ends up in other programs' routing and in
/// the JWT's `iss`, so it is a plain `name[:port]`, never a list, userinfo or an escape.
///
/// - Syntax: a reg-name of letters, digits, `-`, `.`, `_`, `~` (no sub-delims: `,` `;` `(`
///   split or confuse `X-Forwarded-Host` lists; no `%`), an IPv4 address, or a bracketed IPv6
///   literal; an optional `:port` of 1–5 digits, 1–65535. One trailing dot of a name (the DNS
///   root) is dropped.
/// - Names compare case-insensitively (ASCII). With `public_hosts`, the port is part of the
///   public origin too (it reaches `X-Forwarded-Host` and `iss`: a client-chosen port would
///   poison password-reset links), so a written port must be the https listener's or one an
///   entry of that name names (`name:port`, for a load balancer on another port); a Host
///   without a port is the default port of the origin the client used, and is served.
/// - The port as written (digits only, leading zeros dropped) is kept in the forwarded host,
///   because it is part of the origin the browser used.
/// - With no `public_hosts`, every well-formed host is served.
public struct HostPolicy: Sendable, Equatable {
    /// One `public_hosts` entry: a lower-case name without trailing dot, and the port it names.
    public struct Entry: Sendable, Equatable {
        public let name: [UInt8]
        public let port: Int?
    }

    public let entries: [Entry]
    /// The entries spelled canonically (`name[:port]`): the first is the host of a request
    /// that names none.
    public let publicHosts: [[UInt8]]
    /// The https listener's port: always a port this proxy serves.
    public let listenerPort: Int?

    /// Entries the configuration rejected (it validates them) are left out here.
    public init(publicHosts: [String], listenerPort: Int? = nil) {
        var entries: [Entry] = []
        var spelled: [[UInt8]] = []
        for written in publicHosts {
            let bytes = Array(written.utf8)
            guard let parts = bytes.withUnsafeBytes({ Self.parse($0) }) else { continue }
            let canonical = bytes.withUnsafeBytes { Self.canonical($0, parts) }
            entries.append(Entry(name: Array(canonical[parts.name]), port: parts.portValue))
            spelled.append(canonical)
        }
        self.entries = entries
        self.publicHosts = spelled
        self.listenerPort = listenerPort
    }

    public enum Decision: Equatable, Sendable {
        /// Serve it; forward and sign exactly these bytes (lower case, no trailing dot).
        case serve([UInt8])
        /// Serve it as written (already canonical): nothing to allocate.
        case serveAsWritten
        /// Not a well-formed host: `400`.
        case invalid
        /// Well-formed but not one of `public_hosts` (name, or port): `421 misdirected_request`.
        case misdirected
    }

    public func decide(_ host: UnsafeRawBufferPointer) -> Decision {
        guard let parts = Self.parse(host) else { return .invalid }
        if !entries.isEmpty {
            let name = UnsafeRawBufferPointer(rebasing: host[parts.name])
            let port = parts.portValue
            let served = entries.contains { entry in
                entry.name.count == name.count && zip(entry.name, name).allSatisfy { $0 == asciiLower($1) }
                    && (port == nil || port == listenerPort || port == entry.port)
            }
            guard served else { return .misdirected }
        }
        if !parts.canonical { return .serve(Self.canonical(host, parts)) }
        return .serveAsWritten
    }

    public func decide(_ host: String) -> Decision {
        var host = host
        return host.withUTF8 { decide(UnsafeRawBufferPointer($0)) }
    }

    struct Parts {
        /// The name (or address), without brackets' surroundings changed, without a trailing dot.
        var name: Range<Int>
        /// `:port` including the colon, or empty.
        var port: Range<Int>
        /// The port's value, if one is written.
        var portValue: Int?
        /// Written in lower case without a trailing dot.
        var canonical: Bool
    }

    static func parse(_ host: UnsafeRawBufferPointer) -> Parts? {
        let count = host.count
        guard count > 0, count <= 255 else { return nil }
        var nameEnd: Int
        var canonical = true
        if host[0] == UInt8(ascii: "[") {
            // IPv6 literal: hex digits, `:` and `.` (an embedded IPv4) inside brackets.
            guard let close = host.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return nil }
            for i in 1..<close {
                let byte = host[i]
                guard isHexDigit(byte) || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") else { return nil }
                if byte >= 0x41 && byte <= 0x46 { canonical = false }
            }
            nameEnd = close + 1
        } else {
            nameEnd = 0
            while nameEnd < count, host[nameEnd] != UInt8(ascii: ":") {
                let byte = host[nameEnd]
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                     UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                    break
                case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    canonical = false
                default:
                    return nil
                }
                nameEnd += 1
            }
            // No empty labels: `.`, `.a`, `a..b` are not names.
            guard nameEnd > 0, host[0] != UInt8(ascii: "."),
                  !(1..<nameEnd).contains(where: { host[$0] == UInt8(ascii: ".") && host[$0 - 1] == UInt8(ascii: ".") }) else { return nil }
        }
        var port = nameEnd..<nameEnd
        var portValue: Int?
        if nameEnd < count {
            guard host[nameEnd] == UInt8(ascii: ":") else { return nil }
            let digits = (nameEnd + 1)..<count
            guard (1...5).contains(digits.count) else { return nil }
            var value = 0
            for i in digits {
                guard host[i] >= UInt8(ascii: "0"), host[i] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(host[i] - UInt8(ascii: "0"))
            }
            guard value >= 1, value <= 65535 else { return nil }
            port = nameEnd..<count
            portValue = value
            if host[nameEnd + 1] == UInt8(ascii: "0") { canonical = false }
        }
        var name = 0..<nameEnd
        if host[0] != UInt8(ascii: "["), nameEnd > 1, host[nameEnd - 1] == UInt8(ascii: ".") {
            name = 0..<(nameEnd - 1)
            canonical = false
        }
        return Parts(name: name, port: port, portValue: portValue, canonical: canonical)
    }

    static func canonical(_ host: UnsafeRawBufferPointer, _ parts: Parts) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(parts.name.count + parts.port.count)
        for i in parts.name { out.append(asciiLower(host[i])) }
        if let port = parts.portValue { out.append(contentsOf: Array(":\(port)".utf8)) }
        return out
    }
}

@inline(__always)
private func asciiLower(_ byte: UInt8) -> UInt8 { (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte }

@inline(__always)
private func isHexDigit(_ byte: UInt8) -> Bool {
    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
}
