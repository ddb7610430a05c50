@testable import ActAsAudit
import Foundation

public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

// SwiftPM links an executable's entry point as `<Module>_main`; each target hands control to
// libFuzzer's driver from there (libFuzzer's own `main` is not linked when one exists).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
) -> CInt

public func runFuzzDriver(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ callback: FuzzCallback
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}

/// The redactor every audit target uses: SPEC §3's defaults.
public let fuzzRedactor = Redactor(redactKeys: Redactor.defaultRedactKeys, redactHeaders: Redactor.defaultRedactHeaders)

/// Splits `bytes` at the first `\n`: (the line before it, the rest). No `\n`: (all, []).
public func splitFirstLine(_ bytes: [UInt8]) -> (line: [UInt8], rest: [UInt8]) {
    guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return (bytes, []) }
    return (Array(bytes[..<newline]), Array(bytes[(newline + 1)...]))
}

/// What must hold for any value the redactor hands to the log (SPEC §8):
/// - written as JSON it is one line without control bytes (no line can forge another), and it
///   parses back to the same value;
/// - every member whose (logged) name is sensitive holds `[REDACTED]` (or, for a repeated name,
///   only `[REDACTED]`s), at any depth, including JSON documents inside strings;
/// - no string, name or value, still holds a credential the token scrubber recognises.
/// `exempt` names members whose value is redacted by other rules (the cookie headers).
public func checkLoggable(_ value: AuditValue, exempt: Set<String> = [], _ context: @autoclosure () -> String) {
    var bytes: [UInt8] = []
    JSONWriter.writeValue(value, into: &bytes)
    for byte in bytes where byte < 0x20 || byte == 0x7F {
        fatalError("control byte \(byte) in a logged value: \(context())")
    }
    let reparsed: AuditValue
    do {
        reparsed = try JSONParser.parse(bytes, maxDepth: 10_000)
    } catch {
        fatalError("a logged value does not parse back (\(error)): \(String(decoding: bytes, as: UTF8.self)) from \(context())")
    }
    precondition(reparsed == value, "a logged value changes when parsed back: \(String(decoding: bytes, as: UTF8.self))")
    checkRedacted(value, exempt: exempt, depth: 0, context)
}

private func checkRedacted(_ value: AuditValue, exempt: Set<String>, depth: Int, _ context: () -> String) {
    switch value {
    case .null, .bool, .integer, .number:
        return
    case .string(let text):
        checkNoToken(text, context)
        checkEmbeddedJSON(text, depth: depth, context)
    case .array(let elements):
        for element in elements { checkRedacted(element, exempt: exempt, depth: depth, context) }
    case .object(let members):
        for member in members {
            checkNoToken(member.key, context)
            if fuzzRedactor.isSensitiveName(member.key) && !exempt.contains(member.key) {
                let redacted: Bool
                switch member.value {
                case .string(let text): redacted = text == Redactor.placeholder
                case .array(let elements): redacted = elements.allSatisfy { $0 == .string(Redactor.placeholder) }
                default: redacted = false
                }
                precondition(redacted, "member \(member.key) is not redacted: \(member.value.jsonText) from \(context())")
            }
            checkRedacted(member.value, exempt: [], depth: depth, context)
        }
    }
}

private func checkNoToken(_ text: String, _ context: () -> String) {
    if fuzzRedactor.scrubTokens(text) != text {
        fatalError("a credential is left in the log: \(text.debugDescription) from \(context())")
    }
}

/// A string that is itself a JSON document was redacted as one (Redactor+Structure.swift).
private func checkEmbeddedJSON(_ text: String, depth: Int, _ context: () -> String) {
    guard depth < 4, let first = text.utf8.first(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }),
        first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
    else { return }
    guard let inner = try? JSONParser.parse(Array(text.utf8), maxDepth: 10_000) else { return }
    checkRedacted(inner, exempt: [], depth: depth + 1, context)
}

/// Every string in a value (names and values, and those of JSON documents inside strings).
public func allStrings(in value: AuditValue, into out: inout [String]) {
    switch value {
    case .null, .bool, .integer, .number: return
    case .string(let text):
        out.append(text)
        if let inner = try? JSONParser.parse(Array(text.utf8), maxDepth: 10_000), inner != value {
            allStrings(in: inner, into: &out)
        }
    case .array(let elements):
        for element in elements { allStrings(in: element, into: &out) }
    case .object(let members):
        for member in members {
            out.append(member.key)
            allStrings(in: member.value, into: &out)
        }
    }
}

/// A value that the log must not show, planted under a name that plainly names a secret: it
/// must appear in no string of the logged value (unless the same text was also sent elsewhere,
/// where it may be logged legitimately).
public func checkSecretAbsent(_ secret: String, from value: AuditValue, otherTexts: [String], _ context: @autoclosure () -> String) {
    guard secret.utf8.count >= 6, !containsBytes(secret, Redactor.placeholder), !containsBytes(Redactor.placeholder, secret) else { return }
    if otherTexts.contains(where: { containsBytes($0, secret) }) { return }
    var strings: [String] = []
    allStrings(in: value, into: &strings)
    for text in strings where containsBytes(text, secret) {
        fatalError("secret \(secret.debugDescription) logged in \(text.debugDescription) from \(context())")
    }
}

/// A form or query as the application reads it, decoded independently of the redactor:
/// pairs split at `&` and `;`, `%XX` and `+` decoded.
public func decodedPairs(_ bytes: [UInt8]) -> [(name: String, value: String)] {
    var pairs: [(String, String)] = []
    for piece in bytes.split(whereSeparator: { $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: ";") }) {
        let equals = piece.firstIndex(of: UInt8(ascii: "=")) ?? piece.endIndex
        let name = percentDecoded(piece[piece.startIndex..<equals])
        let value = equals < piece.endIndex ? percentDecoded(piece[(equals + 1)...]) : ""
        pairs.append((name, value))
    }
    return pairs
}

private func percentDecoded(_ bytes: ArraySlice<UInt8>) -> String {
    var out: [UInt8] = []
    var index = bytes.startIndex
    func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
    while index < bytes.endIndex {
        let byte = bytes[index]
        if byte == UInt8(ascii: "%"), index + 2 < bytes.endIndex, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
            out.append(high << 4 | low)
            index += 3
        } else {
            out.append(byte == UInt8(ascii: "+") ? 0x20 : byte)
            index += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// Whether a name plainly names a password: lower-cased, without ASCII punctuation and
/// blanks (non-ASCII letters stay: `passwörd` is another word), it contains "password".
public func plainlySecret(_ name: String) -> Bool {
    let folded = name.unicodeScalars.compactMap { scalar -> Unicode.Scalar? in
        switch scalar.value {
        case 0x41...0x5A: return Unicode.Scalar(scalar.value | 0x20)
        case 0x30...0x39, 0x61...0x7A, 0x80...: return scalar
        default: return nil
        }
    }
    return containsBytes(String(String.UnicodeScalarView(folded)), "password")
}

/// Whether `needle`'s UTF-8 occurs in `haystack`'s. Byte-wise on purpose: Foundation's
/// `String.contains` compares Characters (a secret followed by a combining mark would hide)
/// and trapped inside its UTF-16 indexing on an input FuzzMultipart found.
public func containsBytes(_ haystack: String, _ needle: String) -> Bool {
    let text = Array(haystack.utf8), pattern = Array(needle.utf8)
    guard !pattern.isEmpty else { return true }
    guard text.count >= pattern.count else { return false }
    for start in 0...(text.count - pattern.count) where text[start] == pattern[0] {
        if text[start..<(start + pattern.count)].elementsEqual(pattern) { return true }
    }
    return false
}

/// Plants the check of `checkSecretAbsent` for every pair of a form/query that plainly names a
/// password.
public func checkPairSecrets(_ pairs: [(name: String, value: String)], in logged: AuditValue, _ context: @autoclosure () -> String) {
    for (position, pair) in pairs.enumerated() where plainlySecret(pair.name) {
        var others = [pair.name]
        for (other, item) in pairs.enumerated() where other != position {
            others.append(item.name)
            others.append(item.value)
        }
        checkSecretAbsent(pair.value, from: logged, otherTexts: others, context())
    }
}
