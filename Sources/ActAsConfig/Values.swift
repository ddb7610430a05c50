import Foundation

/// A duration of at least one second, written `"90s"`, `"15m"`, `"1h30m"`, `"500ms"` is refused
/// (SPEC §3: any positive duration of at least one second).
public struct ConfigDuration: Sendable, Equatable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> Self { .init(milliseconds: s * 1000) }

    public var seconds: Double { Double(milliseconds) / 1000 }
    public var nanoseconds: Int64 { milliseconds * 1_000_000 }
    public var description: String { "\(milliseconds)ms" }

    /// Parses a sequence of `<number><unit>` with units ms, s, m, h, d.
    public static func parse(_ text: String) -> Result<Self, ConfigValueError> {
        let bytes = Array(text.trimmingCharacters(in: .whitespaces).utf8)
        guard !bytes.isEmpty else { return .failure(.init("empty duration")) }
        var total: Int64 = 0
        var i = 0
        while i < bytes.count {
            var number: Int64 = 0
            let digitsStart = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                number = number &* 10 &+ Int64(bytes[i] - 0x30)
                guard number < 1_000_000_000 else { return .failure(.init("duration too large")) }
                i += 1
            }
            guard i > digitsStart else { return .failure(.init("expected a duration like \"30s\", \"15m\" or \"1h\"")) }
            let unitStart = i
            while i < bytes.count, (bytes[i] >= 0x61 && bytes[i] <= 0x7A) { i += 1 }
            let unit = String(decoding: bytes[unitStart..<i], as: UTF8.self)
            let factor: Int64
            switch unit {
            case "ms": factor = 1
            case "s": factor = 1000
            case "m": factor = 60_000
            case "h": factor = 3_600_000
            case "d": factor = 86_400_000
            case "": return .failure(.init("duration needs a unit (ms, s, m, h, d), e.g. \"\(number)s\""))
            default: return .failure(.init("unknown duration unit \"\(unit)\" (use ms, s, m, h, d)"))
            }
            total += number * factor
        }
        guard total >= 1000 else { return .failure(.init("duration must be at least 1s")) }
        return .success(.init(milliseconds: total))
    }
}

/// A byte size, written `"32KB"`, `"100MB"`, `"1GB"`, `"512B"` or a bare integer of bytes.
/// KB, MB and GB are powers of 1024, as operators expect from nginx and friends.
public enum ConfigSize {
    public static func parse(_ text: String) -> Result<Int64, ConfigValueError> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).uppercased()
        guard !digits.isEmpty, digits.count <= 15, let number = Int64(digits) else {
            return .failure(.init("expected a size like \"32KB\" or \"100MB\""))
        }
        let factor: Int64
        switch unit {
        case "", "B": factor = 1
        case "K", "KB", "KIB": factor = 1 << 10
        case "M", "MB", "MIB": factor = 1 << 20
        case "G", "GB", "GIB": factor = 1 << 30
        default: return .failure(.init("unknown size unit \"\(unit)\" (use B, KB, MB, GB)"))
        }
        let (value, overflow) = number.multipliedReportingOverflow(by: factor)
        guard !overflow else { return .failure(.init("size too large")) }
        return .success(value)
    }
}

public struct ConfigValueError: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// `host:port`, `[v6]:port`. Host may be a name or an address literal.
public struct SocketAddressSpec: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    public static func parse(_ text: String) -> Result<Self, ConfigValueError> {
        let usage = ConfigValueError("expected \"host:port\", e.g. \"0.0.0.0:8443\" or \"[::1]:8443\"")
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(usage) }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return .failure(usage) }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return .failure(usage) }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else { return .failure(usage) }
        guard let port = Int(portText), (0...65535).contains(port) else {
            return .failure(.init("port must be a number from 0 to 65535"))
        }
        return .success(.init(host: String(host), port: port))
    }
}

/// An IPv4 or IPv6 network, `10.0.0.0/8`, `::1/128`; a bare address is a single host.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    public var address: [UInt8]
    public var prefixLength: Int

    public var description: String {
        (address.count == 4 ? address.map(String.init).joined(separator: ".") : IPAddressText.formatIPv6(address))
            + "/\(prefixLength)"
    }

    public static func parse(_ text: String) -> Result<Self, ConfigValueError> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = IPAddressText.parse(String(parts[0])) else {
            return .failure(.init("\"\(text)\" is not an IP address or CIDR (e.g. \"10.0.0.0/8\")"))
        }
        let maxBits = bytes.count * 8
        var prefix = maxBits
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...maxBits).contains(p) else {
                return .failure(.init("prefix length in \"\(text)\" must be 0...\(maxBits)"))
            }
            prefix = p
        }
        return .success(.init(address: bytes, prefixLength: prefix))
    }

    /// Whether `candidate` (4 or 16 bytes; IPv4-mapped IPv6 is treated as IPv4) is inside.
    public func contains(_ candidate: [UInt8]) -> Bool {
        var other = candidate
        if other.count == 16, address.count == 4, other[0..<10].allSatisfy({ $0 == 0 }), other[10] == 0xFF, other[11] == 0xFF {
            other = Array(other[12...])
        }
        guard other.count == address.count else { return false }
        var bits = prefixLength
        var i = 0
        while bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if other[i] & mask != address[i] & mask { return false }
            bits -= 8
            i += 1
        }
        return true
    }
}

public enum IPAddressText {
    /// 4 bytes for IPv4, 16 for IPv6, nil otherwise.
    public static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    static func formatIPv6(_ bytes: [UInt8]) -> String {
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &storage, &out, socklen_t(out.count))
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
