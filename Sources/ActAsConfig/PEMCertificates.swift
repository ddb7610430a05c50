import Foundation

/// Counts the PEM certificate blocks of a file whose base64 decodes, so `check` can tell an
/// empty or mistyped CA file before a TLS listener refuses it. The DER itself is BoringSSL's
/// to judge when the listener loads the file.
enum PEMCertificates {
    static let begin = "-----BEGIN CERTIFICATE-----"
    static let end = "-----END CERTIFICATE-----"

    static func count(in text: String) -> Int {
        var found = 0
        var rest = text[...]
        while let start = rest.range(of: begin) {
            guard let stop = rest.range(of: end, range: start.upperBound..<rest.endIndex) else { break }
            let body = rest[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
            if !body.isEmpty, Data(base64Encoded: String(body)) != nil { found += 1 }
            rest = rest[stop.upperBound...]
        }
        return found
    }
}
