#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the log's files are. The writer appends to the configured path (`audit.jsonl`); when it
/// reaches `max_file_size` the file is renamed to `<path>.<seq of its first record>`, the seq
/// zero-padded to 12 digits (`audit.jsonl.000000001042`), so names never change once written and
/// a shell glob lists them in chain order: `actas audit verify logs/audit.jsonl.* logs/audit.jsonl`.
/// If such a name is taken, `-1`, `-2`, … is appended (sorting right after it).
public enum AuditFiles {
    public static func rotatedPath(for path: String, firstSeq: UInt64) -> String {
        let digits = String(firstSeq)
        return path + "." + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }

    /// A rotated name that does not exist yet.
    static func unusedRotatedPath(for path: String, firstSeq: UInt64) -> String {
        let base = rotatedPath(for: path, firstSeq: firstSeq)
        var candidate = base
        var counter = 0
        while FileIO.exists(candidate) {
            counter += 1
            candidate = base + "-\(counter)"
        }
        return candidate
    }

    /// The rotated files of `path` (oldest first), then `path` itself if it exists: the order in
    /// which to verify, tail or export the whole log. Only names this writer makes are listed
    /// (12 or more digits), not an external logrotate's `.1`, `.2.gz`.
    public static func chainOrder(for path: String) -> [String] {
        let directory = FileIO.directory(of: path)
        let prefix = FileIO.baseName(of: path) + "."
        var rotated: [(seq: UInt64, counter: Int, name: String)] = []
        for name in FileIO.listDirectory(directory) where name.hasPrefix(prefix) {
            let suffix = name.dropFirst(prefix.count)
            let parts = suffix.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let digits = parts.first, digits.count >= 12, digits.allSatisfy(\.isASCIIDigit),
                let seq = UInt64(digits)
            else { continue }
            var counter = 0
            if parts.count == 2 {
                guard parts[1].allSatisfy(\.isASCIIDigit), let value = Int(parts[1]) else { continue }
                counter = value
            }
            rotated.append((seq, counter, name))
        }
        rotated.sort { ($0.seq, $0.counter) < ($1.seq, $1.counter) }
        let joined = directory == "." && !path.hasPrefix("./") ? rotated.map(\.name) : rotated.map { directory + "/" + $0.name }
        return joined + (FileIO.exists(path) ? [path] : [])
    }

    /// The first seq a rotated file's name gives (`audit.jsonl.000000001042` or `…-1` → 1042).
    static func rotatedSeq(inName name: String) -> UInt64? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let parts = name[name.index(after: dot)...].split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let digits = parts.first, digits.count >= 12, digits.allSatisfy(\.isASCIIDigit) else { return nil }
        if parts.count == 2, parts[1].isEmpty || !parts[1].allSatisfy(\.isASCIIDigit) { return nil }
        return UInt64(digits)
    }

    /// Why a chain whose first record is `firstSeq` (> 1) in `file` cannot be trusted as an
    /// anchor, or nil when it can: a rotated file whose name is its first seq (the writer named
    /// it so), or the current file when a rotated file with earlier records is beside it. A log
    /// whose first records were deleted fits neither.
    static func missingHead(file: String, firstSeq: UInt64) -> String? {
        if let named = rotatedSeq(inName: FileIO.baseName(of: file)) {
            if named == firstSeq { return nil }
            return "the file name says its first record is seq \(named), but it starts at seq \(firstSeq): records were removed from its start"
        }
        let earlier = chainOrder(for: file).compactMap { rotatedSeq(inName: FileIO.baseName(of: $0)) }
        if earlier.contains(where: { $0 < firstSeq }) { return nil }
        return "the log starts at seq \(firstSeq), not 1, and no rotated file with earlier records is beside it: records were removed from its start (or give the earlier files too, oldest first)"
    }

    /// Calls `body` with each line (without its `\n`), its 1-based number and whether it was
    /// terminated by `\n`. Stops when `body` returns false. A line longer than `maxLineBytes` is
    /// passed cut short, flagged unterminated, and reading stops.
    static func forEachLine(
        path: String, maxLineBytes: Int = 16 << 20,
        _ body: (_ line: UnsafeBufferPointer<UInt8>, _ number: Int, _ terminated: Bool) -> Bool
    ) -> Int32? {
        let fd: Int32
        switch FileIO.openForReading(path) {
        case .success(let opened): fd = opened
        case .failure(let failure): return failure.code
        }
        defer { close(fd) }
        let chunkSize = 1 << 20
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var pending: [UInt8] = []
        var number = 0
        while true {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, chunkSize) }
            if got < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if got == 0 { break }
            var keepGoing = true
            chunk.withUnsafeBufferPointer { buffer in
                var start = 0
                let filled = UnsafeBufferPointer(rebasing: buffer[0..<got])
                while keepGoing, let newline = filled[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    number += 1
                    if pending.isEmpty {
                        keepGoing = body(UnsafeBufferPointer(rebasing: filled[start..<newline]), number, true)
                    } else {
                        pending.append(contentsOf: filled[start..<newline])
                        keepGoing = pending.withUnsafeBufferPointer { body($0, number, true) }
                        pending.removeAll(keepingCapacity: true)
                    }
                    start = newline + 1
                }
                if keepGoing && start < got { pending.append(contentsOf: filled[start..<got]) }
            }
            if !keepGoing { return nil }
            if pending.count > maxLineBytes {
                _ = pending.withUnsafeBufferPointer { body($0, number + 1, false) }
                return nil
            }
        }
        if !pending.isEmpty {
            _ = pending.withUnsafeBufferPointer { body($0, number + 1, false) }
        }
        return nil
    }

    /// What the tail of an existing log file says about the chain.
    enum TailState {
        /// Ends with a complete, self-consistent record.
        case clean(last: InspectedLine)
        /// Ends with a partial line (a write torn by a crash) or a record that does not verify.
        /// `lastValid` is the last self-consistent record before it, if any.
        case damaged(lastValid: InspectedLine?, why: String)
        case empty
    }

    /// Looks at the end of a file (the last 4 MiB, or all of it when nothing valid is there).
    static func inspectTail(path: String) -> TailState {
        guard case .success(let fd) = FileIO.openForReading(path) else { return .empty }
        defer { close(fd) }
        guard let status = FileIO.status(of: fd), status.isRegular, status.size > 0 else { return .empty }
        var window = min(status.size, 4 << 20)
        while true {
            guard let bytes = FileIO.read(fd, offset: status.size - window, count: Int(window)) else {
                return .damaged(lastValid: nil, why: "cannot read the file")
            }
            let wholeFile = window == status.size
            if let state = tailState(bytes, startsAtLineBoundary: wholeFile) { return state }
            if wholeFile { return .damaged(lastValid: nil, why: "no valid record in the file") }
            window = status.size
        }
    }

    /// nil when the window holds no valid record and an earlier part of the file might.
    private static func tailState(_ bytes: [UInt8], startsAtLineBoundary: Bool) -> TailState? {
        var lines: [Range<Int>] = []
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            lines.append(start..<index)
            start = index + 1
        }
        let torn = start < bytes.count
        if !startsAtLineBoundary && !lines.isEmpty { lines.removeFirst() }  // probably cut
        var problem: String? = torn ? "the last line is incomplete (a write was interrupted)" : nil
        return bytes.withUnsafeBufferPointer { buffer -> TailState? in
            for range in lines.reversed() {
                switch AuditLineInspector.inspect(UnsafeBufferPointer(rebasing: buffer[range])) {
                case .success(let line) where line.hashMatches:
                    return problem == nil ? .clean(last: line) : .damaged(lastValid: line, why: problem!)
                case .success:
                    problem = problem ?? "the last record does not match its hash"
                case .failure(let defect):
                    problem = problem ?? "the last line is not a valid record (\(defect.description))"
                }
            }
            if lines.isEmpty && !torn && startsAtLineBoundary { return .empty }
            return nil
        }
    }

    /// The seq of the first record of a file, if its first line is readable.
    static func firstSeq(path: String) -> UInt64? {
        var seq: UInt64?
        _ = forEachLine(path: path) { line, _, _ in
            if case .success(let inspected) = AuditLineInspector.inspect(line) { seq = inspected.seq }
            return false
        }
        return seq
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
