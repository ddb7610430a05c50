#if canImport(Glibc)
import Glibc
#endif
@testable import ActAsAudit
import FuzzSupport

/// The audit-line reader and the verifier over a whole log file. Half of the inputs (odd first
/// byte) are re-chained first: each line that ends in `}` gets a correct `prev` and `hash`, so
/// the fuzzer reaches past the hash check into the verifier's and reader's logic. The line
/// inspector, the reader (`AuditLogEntry`), the verifier, the tail check used at start-up and
/// `audit tail`'s reader must agree with each other.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 1 { bytes = rechained(bytes) }

    var lines: [[UInt8]] = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
    let terminated = lines.last?.isEmpty ?? true
    if terminated { lines.removeLast() }
    var consistent = 0
    for line in lines {
        let inspected = line.withUnsafeBufferPointer { AuditLineInspector.inspect($0) }
        let entry = AuditLogEntry(line: line)
        if case .success(let facts) = inspected {
            guard let entry else { fatalError("the inspector reads a line the reader does not") }
            precondition(entry.seq == facts.seq, "reader seq \(String(describing: entry.seq)) != inspector seq \(facts.seq)")
            if facts.hashMatches { consistent += 1 }
        }
    }

    let path = scratchPath
    guard writeFile(path, bytes) else { fatalError("cannot write \(path)") }
    let verdict = AuditVerifier.verify(files: [path])
    var read = 0
    try? AuditLogReader.forEachEntry(in: [path]) { _ in
        read += 1
        return true
    }
    switch verdict {
    case .ok(let records, let lastSeq, _):
        precondition(terminated || bytes.isEmpty, "a log with a torn last line verified")
        precondition(records == lines.count && records == consistent && read == records, "ok with \(records) of \(lines.count) lines")
        switch AuditFiles.inspectTail(path: path) {
        case .clean(let last): precondition(last.seq == lastSeq, "tail seq \(last.seq) != verified last seq \(lastSeq)")
        case .empty: precondition(records == 0)
        case .damaged(_, let why): fatalError("a verified log's tail is damaged: \(why)")
        }
    case .broken(let seq, _, let line, _):
        precondition(line >= 0 && line <= lines.count + 1 && seq >= 1, "broken at \(seq) line \(line) of \(lines.count)")
    }
    return 0
}

/// A directory of its own, so the verifier's look for rotated files beside the log sees none.
private let scratchPath: String = {
    let directory = "/tmp/fuzz-audit-line-\(getpid())"
    mkdir(directory, 0o700)
    return directory + "/audit.jsonl"
}()

private func writeFile(_ path: String, _ bytes: [UInt8]) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
        if count <= 0 { return false }
        written += count
    }
    return true
}

/// Each line ending in `}` (with any `,"prev":…` and `,"hash":…` tail cut first) gets
/// `,"prev":"<previous hash>","hash":"<its hash>"}` as the writer would write them.
private func rechained(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var prev = AuditHash.genesis
    let pieces = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    for (index, piece) in pieces.enumerated() {
        var line = Array(piece)
        if line.last == UInt8(ascii: "}") {
            if let cut = lastRange(of: Array(#","prev":""#.utf8), in: line) { line.removeSubrange(cut.lowerBound...) } else { line.removeLast() }
            line += Array(#","prev":""#.utf8) + Array(prev.hex.utf8) + Array(#""}"#.utf8)
            let hash = AuditChain.hash(prev: prev, lineWithoutHash: line)
            line.removeLast()
            line += Array(#","hash":""#.utf8) + Array(hash.hex.utf8) + Array(#""}"#.utf8)
            prev = hash
        }
        out += line
        if index < pieces.count - 1 { out.append(UInt8(ascii: "\n")) }
    }
    return out
}

private func lastRange(of needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
    guard haystack.count >= needle.count else { return nil }
    for start in stride(from: haystack.count - needle.count, through: 0, by: -1)
    where haystack[start..<(start + needle.count)].elementsEqual(needle) {
        return start..<(start + needle.count)
    }
    return nil
}

@_cdecl("FuzzAuditLine_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzDriver(argc, argv, fuzz)
}
