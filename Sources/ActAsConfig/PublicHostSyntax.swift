/// What a `listen.public_hosts` entry may be: `name` or `name:port`, exactly the host syntax
/// the proxy accepts in `Host` (ActAsHTTP's HostPolicy), so that every entry can match a
/// request. Entries end up in `X-Forwarded-Host` and the assertion's `iss`, so a scheme, path
/// or anything a list could be split on is a configuration error, not a silent mismatch.
enum PublicHostSyntax {
    /// Why `entry` is not a valid entry, or nil.
    static func problem(_ entry: String) -> String? {
        if entry.isEmpty { return "an entry is empty" }
        if entry.contains("://") { return "\"\(entry)\" must be a host name without a scheme (e.g. \"app.example.com\" or \"app.example.com:8443\")" }
        if entry.contains("/") { return "\"\(entry)\" must be a host name without a path" }
        let bytes = Array(entry.utf8)
        var nameEnd = 0
        if bytes[0] == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close > 1,
                  bytes[1..<close].allSatisfy({ isHex($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else {
                return "\"\(entry)\" is not a valid bracketed IPv6 address"
            }
            nameEnd = close + 1
        } else {
            while nameEnd < bytes.count, bytes[nameEnd] != UInt8(ascii: ":") {
                guard isNameByte(bytes[nameEnd]) else {
                    return "\"\(entry)\" may contain only letters, digits, \"-\", \".\", \"_\" and \"~\" in its name"
                }
                nameEnd += 1
            }
            let labels = bytes[0..<nameEnd].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
            // One trailing dot (the DNS root) is allowed; no other empty label.
            guard nameEnd > 0, !labels.dropLast().contains(where: \.isEmpty), nameEnd > 1 || labels.count == 1 else {
                return "\"\(entry)\" is not a valid host name"
            }
        }
        guard nameEnd < bytes.count else { return nil }
        let digits = bytes[(nameEnd + 1)...]
        guard bytes[nameEnd] == UInt8(ascii: ":"), (1...5).contains(digits.count),
              digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let port = Int(String(decoding: digits, as: UTF8.self)), (1...65535).contains(port) else {
            return "\"\(entry)\" must be \"name\" or \"name:port\" with a port from 1 to 65535"
        }
        return nil
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
    }
}
