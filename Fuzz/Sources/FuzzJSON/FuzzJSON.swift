@testable import ActAsAudit
import FuzzSupport
import NIOCore

/// The JSON parser, as the log reader uses it (no redactor) and as the redactor uses it on
/// `application/json` bodies. A document it accepts must write back as one line and parse
/// back to the same value (a fixpoint after one write); a redacted body must satisfy
/// `checkLoggable`, parse whenever the plain parse does (within the depth limit), and hide
/// every string under a member that plainly names a password.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let plain = try? JSONParser.parse(bytes, maxDepth: 128)
    if let plain {
        var written: [UInt8] = []
        JSONWriter.writeValue(plain, into: &written)
        precondition(!written.contains(where: { $0 < 0x20 }), "control byte written")
        guard let again = try? JSONParser.parse(written, maxDepth: 128) else {
            fatalError("written JSON does not parse: \(String(decoding: written, as: UTF8.self))")
        }
        var rewritten: [UInt8] = []
        JSONWriter.writeValue(again, into: &rewritten)
        precondition(rewritten == written, "writing is not a fixpoint: \(String(decoding: written, as: UTF8.self))")
        // Numbers are kept as text, so nothing is lost between parse and write.
        precondition(again == plain, "a value changes through write and parse: \(String(decoding: written, as: UTF8.self))")
    }
    let body = AuditCapturedBody(bytes: bytes, contentType: "application/json")
    guard let redacted = fuzzRedactor.redactBody(body) else {
        precondition(bytes.isEmpty)
        return 0
    }
    let context = { String(decoding: bytes, as: UTF8.self).debugDescription }
    checkLoggable(redacted, context())
    if let plain, nesting(plain) < JSONParser.defaultMaxDepth - 2 {
        let loggedUnparsed = redacted["unparsed"] == .bool(true) && redacted["reason"] != nil && plain["reason"] == nil
        precondition(!loggedUnparsed, "a valid document was logged unparsed: \(redacted.jsonText)")
        checkMemberSecrets(plain, logged: redacted, context())
    }
    return 0
}

private func nesting(_ value: AuditValue) -> Int {
    switch value {
    case .array(let elements): return 1 + (elements.map(nesting).max() ?? 0)
    case .object(let members): return 1 + (members.map { nesting($0.value) }.max() ?? 0)
    default: return 0
    }
}

/// For each member that plainly names a password, every string of its value is a secret the
/// log must not show (unless the same text occurs elsewhere in the document).
private func checkMemberSecrets(_ document: AuditValue, logged: AuditValue, _ context: @autoclosure () -> String) {
    var secretMembers: [(index: Int, value: AuditValue)] = []
    var counter = 0
    visitMembers(document, &counter) { index, member in
        if plainlySecret(member.key) { secretMembers.append((index, member.value)) }
    }
    for (index, value) in secretMembers {
        var secrets: [String] = []
        allStrings(in: value, into: &secrets)
        var others: [String] = []
        var position = 0
        collectStrings(document, skipping: index, &position, into: &others)
        for secret in secrets { checkSecretAbsent(secret, from: logged, otherTexts: others, context()) }
    }
}

/// Numbers every member of the document in order.
private func visitMembers(_ value: AuditValue, _ counter: inout Int, _ body: (Int, AuditValue.Member) -> Void) {
    switch value {
    case .array(let elements):
        for element in elements { visitMembers(element, &counter, body) }
    case .object(let members):
        for member in members {
            body(counter, member)
            counter += 1
            visitMembers(member.value, &counter, body)
        }
    default:
        return
    }
}

/// The document's strings, leaving out the value of member number `skipped` (its name stays).
private func collectStrings(_ value: AuditValue, skipping skipped: Int, _ counter: inout Int, into out: inout [String]) {
    switch value {
    case .string: allStrings(in: value, into: &out)
    case .array(let elements):
        for element in elements { collectStrings(element, skipping: skipped, &counter, into: &out) }
    case .object(let members):
        for member in members {
            out.append(member.key)
            let index = counter
            counter += 1
            if index == skipped {
                var ignored = 0
                visitMembers(member.value, &ignored) { _, _ in }
                counter += ignored
            } else {
                collectStrings(member.value, skipping: skipped, &counter, into: &out)
            }
        }
    default:
        return
    }
}

@_cdecl("FuzzJSON_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzDriver(argc, argv, fuzz)
}
