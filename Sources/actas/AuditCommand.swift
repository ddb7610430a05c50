import ActAsAudit
import ActAsConfig
import ActAsCore
import ArgumentParser
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `actas audit tail|verify|export`: the security team's view of the request log (SPEC §2, §8).
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read, follow, verify and export the request log (audit.file).",
        discussion: """
            The request log is one JSON object per line, hash-chained (SPEC §8). When it reaches \
            audit.max_file_size it is renamed to audit.jsonl.<first seq, 12 digits> and a new file \
            continues the chain, so `logs/audit.jsonl.* logs/audit.jsonl` lists the whole log in \
            order. Records are redacted when written; these commands print nothing else.
            """,
        subcommands: [Tail.self, Verify.self, Export.self]
    )

    // MARK: tail

    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the last records of the request log, filtered, and optionally follow it.",
            discussion: """
                Prints the last N matching records, oldest first, one line each: time (UTC), type, \
                who (`admin as jdoe` while impersonating), what, and the session. With -f it keeps \
                printing records as they are written, also across rotations, until interrupted. \
                Values are shown with control, bidi and line-separator characters escaped (\\uXXXX), \
                so a hostile username or path cannot drive the terminal. Colour only on a terminal \
                and when NO_COLOR is not set. --json prints the matching lines exactly as logged.
                """
        )

        @OptionGroup var options: ConfigOption
        @OptionGroup var filters: AuditFilterOptions
        @Flag(name: [.customShort("f"), .customLong("follow")], help: "Keep following the log (across rotations) until interrupted.")
        var follow = false
        @Option(name: [.customShort("n"), .customLong("lines")], help: "How many matching records to show first (0 with -f: only new ones).")
        var lines = 20
        @Flag(help: "Print the matching lines exactly as logged (JSON lines), for scripts and pipes.")
        var json = false
        @Option(help: ArgumentHelp("The log file (default: audit.file from the configuration).", valueName: "file"))
        var file: String?

        func validate() throws {
            guard lines >= 0 else { throw ValidationError("-n must be 0 or more") }
            try filters.validateTypes()
        }

        func run() throws {
            let path = try AuditLogLocation.path(file: file, options: options, command: "tail")
            let filter = filters.filter()
            let output = OutputSink(fd: STDOUT_FILENO)
            let format = RecordFormat(json: json, colour: !json && TerminalText.wantsColour(fd: STDOUT_FILENO))

            var follower = LogFollower(path: path)
            var shown = TailBuffer(capacity: lines)
            var currentFirstSeq: UInt64?
            follower.readAll { entry in
                if currentFirstSeq == nil { currentFirstSeq = entry.seq }
                if filter.matches(entry) { shown.append(entry) }
            }
            // Not enough in the current file: go back through the rotated files, newest first.
            var earlier: [AuditLogEntry] = []
            let rotated = AuditFiles.chainOrder(for: path).filter { $0 != path }
            if shown.count < lines {
                for rotatedFile in rotated.reversed() {
                    var inFile = TailBuffer(capacity: lines - shown.count - earlier.count)
                    do {
                        try AuditLogReader.forEachEntry(in: [rotatedFile], matching: filter) { entry in
                            // A file renamed between opening the current file and listing the rotated
                            // ones holds records already read.
                            if let first = currentFirstSeq, let seq = entry.seq, seq >= first { return true }
                            inFile.append(entry)
                            return true
                        }
                    } catch {
                        Diagnostics.warn("actas audit tail: \(TerminalText.safe(rotatedFile)): \(error)")
                        continue
                    }
                    earlier.insert(contentsOf: inFile.elements, at: 0)
                    if shown.count + earlier.count >= lines { break }
                }
            }
            if !follower.isOpen && rotated.isEmpty && !follow {
                Diagnostics.error("actas audit tail: there is no request log at \(TerminalText.safe(path)) yet")
                throw ExitCode(1)
            }
            if follower.lastSeq == nil, let newest = rotated.last {
                // No current file (yet): follow on from the newest rotated file's last record.
                try? AuditLogReader.forEachEntry(in: [newest]) { entry in
                    follower.lastSeq = entry.seq ?? follower.lastSeq
                    return true
                }
            }
            for entry in earlier + shown.elements { output.emit(format.render(entry)) }
            output.flush()
            guard follow else { return }

            StopSignal.install()
            if !follower.isOpen { Diagnostics.info("actas audit tail: waiting for \(TerminalText.safe(path)) to appear") }
            while !StopSignal.requested {
                StopSignal.sleep(milliseconds: 200)
                for entry in follower.poll() where filter.matches(entry) {
                    output.emit(format.render(entry))
                }
                output.flush()
                if output.failed { break }  // the reader went away
            }
            follower.stop()
        }
    }

    // MARK: export

    struct Export: ParsableCommand {
        enum Format: String, ExpressibleByArgument, CaseIterable {
            case csv, json
        }

        static let configuration = CommandConfiguration(
            abstract: "Export the records of a time window as CSV or JSON (compliance export).",
            discussion: """
                Selects records with from <= ts < to across the rotated files in chain order. Times \
                are RFC 3339 (2026-11-06T10:15:00Z, 2026-11-06T11:15:00+01:00) or dates (2026-11-01 = \
                midnight UTC), so `--from 2026-11-01 --to 2026-11-02` is all of November 1. json: an \
                array of the records exactly as logged. csv: RFC 4180 with a fixed header row (every \
                key a record can have; query, headers and bodies as compact JSON in their cell, other \
                members in `extra`); cells that a spreadsheet would run as a formula (starting with \
                = + - @, tab or CR) get a leading '. The log is not verified here: use `audit verify`.
                """
        )

        @OptionGroup var options: ConfigOption
        @OptionGroup var filters: AuditFilterOptions
        @Option(help: ArgumentHelp("Start of the window, inclusive (RFC 3339 time or date; default: the beginning).", valueName: "time"))
        var from: String?
        @Option(help: ArgumentHelp("End of the window, exclusive (RFC 3339 time or date; default: no end).", valueName: "time"))
        var to: String?
        @Option(help: "csv or json.") var format: Format = .json
        @Option(help: ArgumentHelp("Write to this file instead of standard output (replaced only when the export is complete).", valueName: "file"))
        var output: String?
        @Option(help: ArgumentHelp("The log file whose rotated files are read too (default: audit.file from the configuration).", valueName: "file"))
        var file: String?
        @Argument(help: ArgumentHelp("Log files to read, in this order (instead of --file).", valueName: "file"))
        var files: [String] = []

        func validate() throws {
            try filters.validateTypes()
            if file != nil && !files.isEmpty { throw ValidationError("give log files or --file, not both") }
        }

        func run() throws {
            var filter = filters.filter()
            filter.from = try Self.time(from, "--from")
            filter.to = try Self.time(to, "--to")
            if let start = filter.from, let end = filter.to, start >= end {
                Diagnostics.error("actas audit export: --from must be before --to (the window is from <= ts < to)")
                throw ExitCode(2)
            }
            var sources = files
            if sources.isEmpty {
                let path = try AuditLogLocation.path(file: file, options: options, command: "export")
                sources = AuditFiles.chainOrder(for: path)
                if sources.isEmpty {
                    Diagnostics.error("actas audit export: there is no request log at \(TerminalText.safe(path)) yet")
                    throw ExitCode(1)
                }
            }
            for source in sources {
                if let problem = AuditLogLocation.unreadable(source) {
                    Diagnostics.error("actas audit export: \(TerminalText.safe(source)): \(problem)")
                    throw ExitCode(2)
                }
            }

            let sink: OutputSink
            var temporary: String?
            if let output {
                let partial = output + ".partial-\(getpid())"
                let fd = partial.withCString { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600) }
                guard fd >= 0 else {
                    Diagnostics.error("actas audit export: --output \(TerminalText.safe(output)): \(String(cString: strerror(errno)))")
                    throw ExitCode(1)
                }
                sink = OutputSink(fd: fd)
                temporary = partial
            } else {
                sink = OutputSink(fd: STDOUT_FILENO)
            }
            func abandon(_ message: String) -> ExitCode {
                Diagnostics.error("actas audit export: \(message)")
                if let temporary {
                    sink.release()
                    unlink(temporary)
                }
                return ExitCode(1)
            }

            var count = 0
            switch format {
            case .json: sink.emit("[")
            case .csv: sink.emit(CSVExport.header)
            }
            do {
                try AuditLogReader.forEachEntry(in: sources, matching: filter) { entry in
                    switch format {
                    case .json:
                        sink.emit(count == 0 ? "\n" : ",\n")
                        sink.emit(RecordFormat.safeLine(entry))
                    case .csv:
                        sink.emit(CSVExport.row(entry))
                    }
                    count += 1
                    return !sink.failed
                }
            } catch {
                throw abandon("\(TerminalText.safe(String(describing: error)))")
            }
            if format == .json { sink.emit(count == 0 ? "]\n" : "\n]\n") }
            sink.flush()
            if let code = sink.error { throw abandon("cannot write: \(String(cString: strerror(code)))") }
            if let output, let temporary {
                sink.syncAndClose()
                if let code = sink.error { throw abandon("cannot write: \(String(cString: strerror(code)))") }
                guard rename(temporary, output) == 0 else {
                    throw abandon("cannot rename to \(TerminalText.safe(output)): \(String(cString: strerror(errno)))")
                }
                Diagnostics.info("exported \(count) record\(count == 1 ? "" : "s") to \(TerminalText.safe(output))")
            }
        }

        static func time(_ text: String?, _ option: String) throws -> AuditTimestamp? {
            guard let text else { return nil }
            guard let time = AuditTimestamp.parse(text) else {
                Diagnostics.error("actas audit export: \(option): \"\(TerminalText.safe(text))\" is not an RFC 3339 time (2026-11-06T10:15:00Z) or a date (2026-11-01)")
                throw ExitCode(2)
            }
            return time
        }
    }
}

/// The filters `tail` and `export` share.
struct AuditFilterOptions: ParsableArguments {
    @Option(name: .customLong("session"), help: ArgumentHelp("Only records of this impersonation session.", valueName: "imp_…"))
    var session: String?
    @Option(help: ArgumentHelp("Only records about this user (the effective user, or the target of a sign-in or action).", valueName: "username"))
    var user: String?
    @Option(help: ArgumentHelp("Only records of what this person did as someone else, or as an actor.", valueName: "username"))
    var actor: String?
    @Option(name: .customLong("type"), help: ArgumentHelp("Only these record types (repeat, or comma-separate): \(AuditEventType.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "type"))
    var types: [String] = []

    var typeSet: Set<String> {
        Set(types.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    func validateTypes() throws {
        let known = Set(AuditEventType.allCases.map(\.rawValue))
        for type in typeSet.sorted() where !known.contains(type) {
            throw ValidationError("--type \(TerminalText.safe(type)): not a record type; one of \(AuditEventType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func filter() -> AuditLogFilter {
        AuditLogFilter(sessionID: session, user: user, actor: actor, types: types.isEmpty ? nil : typeSet)
    }
}

enum AuditLogLocation {
    /// `--file`, else `audit.file` from the configuration.
    static func path(file: String?, options: ConfigOption, command: String, loaded: ActAsConfig? = nil) throws -> String {
        if let file { return file }
        let config = try loaded ?? options.load()
        guard let path = config.audit.file else {
            Diagnostics.error("actas audit \(command): audit.file is \"-\" in \(TerminalText.safe(options.path)): records go to the server's standard output, so there is no file to \(command); pass --file")
            throw ExitCode(2)
        }
        return path
    }

    /// Why a log file cannot be read, or nil.
    static func unreadable(_ path: String) -> String? {
        if path.isEmpty { return "empty file name" }
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return String(cString: strerror(errno)) }
        if (info.st_mode & S_IFMT) == S_IFDIR { return "is a directory" }
        return nil
    }
}

// MARK: - Output

/// Terminal output: `TerminalText` (ActAsCore) escapes; this decides about colour.
extension TerminalText {
    /// Colour only for a terminal, and not when NO_COLOR is set (no-color.org) or TERM is dumb.
    static func wantsColour(fd: Int32) -> Bool {
        let environment = ProcessInfo.processInfo.environment
        if let noColour = environment["NO_COLOR"], !noColour.isEmpty { return false }
        if environment["TERM"] == "dumb" { return false }
        return isatty(fd) == 1
    }
}

/// Buffered writes straight to a file descriptor.
final class OutputSink {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var error: Int32?
    private var closed = false

    init(fd: Int32) {
        self.fd = fd
        buffer.reserveCapacity(1 << 16)
    }

    var failed: Bool { error != nil }

    func emit(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        defer { buffer.removeAll(keepingCapacity: true) }
        guard error == nil, !closed else { return }
        var offset = 0
        buffer.withUnsafeBytes { raw in
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    error = errno
                    return
                }
                offset += written
            }
        }
    }

    func syncAndClose() {
        flush()
        if error == nil, fsync(fd) != 0 { error = errno }
        release()
    }

    func release() {
        guard !closed else { return }
        closed = true
        _ = close(fd)
    }
}

/// How `tail` prints a record.
struct RecordFormat {
    var json: Bool
    var colour: Bool

    func render(_ entry: AuditLogEntry) -> String {
        (json ? Self.safeLine(entry) : human(entry)) + "\n"
    }

    /// The line as logged. The writer escapes every dangerous character, so a genuine line is
    /// returned unchanged; a hand-edited line carrying raw ones is re-encoded with the log's escaping.
    static func safeLine(_ entry: AuditLogEntry) -> String {
        TerminalText.isSafe(entry.line) ? entry.line : entry.fields.jsonText
    }

    private enum Style: String {
        case dim = "2", bold = "1", red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36"
    }

    private func paint(_ text: String, _ style: Style?) -> String {
        guard colour, let style else { return text }
        return "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m"
    }

    private func string(_ entry: AuditLogEntry, _ key: String) -> String? {
        guard let value = entry[key] else { return nil }
        switch value {
        case .null: return nil
        case .string(let text): return TerminalText.safe(text)
        default: return TerminalText.safe(value.jsonText)
        }
    }

    /// `2026-11-06 10:15:23  request  admin as jdoe  GET /api/users → 201  3.2 ms  imp_…`
    func human(_ entry: AuditLogEntry) -> String {
        var parts: [String] = []
        let time: String
        if let timestamp = entry.timestamp {
            let text = timestamp.rfc3339
            time = String(text.prefix(10)) + " " + String(text.dropFirst(11).prefix(8))
        } else {
            time = string(entry, "ts") ?? "-"
        }
        parts.append(paint(time, .dim))
        let type = string(entry, "type") ?? "?"
        parts.append(paint(type, Self.style(forType: type)))

        var used: Set<String> = ["ts", "type", "seq", "prev", "hash"]
        let user = string(entry, "user")
        let impersonator = string(entry, "impersonator")
        var who: String
        if let impersonator {
            who = paint(impersonator, .bold) + " as " + paint(user ?? "?", .bold)
            used.formUnion(["user", "impersonator"])
        } else if let user {
            who = paint(user, .bold)
            used.insert("user")
        } else if let target = string(entry, "target") {
            who = paint(target, .bold)
            used.insert("target")
        } else if let actor = string(entry, "actor") {
            who = paint(actor, .bold)
            used.insert("actor")
        } else {
            who = "-"
        }
        if let actor = string(entry, "actor"), !used.contains("actor") {
            who += " (by \(actor))"
            used.insert("actor")
        }
        parts.append(who)

        if let method = string(entry, "method"), let path = string(entry, "path") {
            var what = "\(method) \(path)\(query(entry))"
            used.formUnion(["method", "path", "query"])
            if let status = entry["status"]?.integerValue {
                what += " → " + paint(String(status), Self.style(forStatus: status))
                used.insert("status")
            }
            parts.append(what)
        } else if let path = string(entry, "path") {
            parts.append(path + query(entry))
            used.formUnion(["path", "query"])
        }
        if let duration = string(entry, "duration_ms") {
            parts.append("\(duration) ms")
            used.insert("duration_ms")
        }

        // Event details, in log order, as key=value; a request's bulky members stay in --json.
        let quiet: Set<String> = type == "request"
            ? ["request_id", "client_ip", "upstream_ms", "bytes_in", "bytes_out", "request_headers", "request_body", "session_id", "mode", "client_request_id"]
            : ["request_id", "request_headers", "request_body", "session_id", "client_request_id", "upstream_ms", "bytes_in", "bytes_out"]
        var details: [String] = []
        for member in entry.fields.members ?? [] where !used.contains(member.key) && !quiet.contains(member.key) {
            guard let value = string(entry, member.key) else { continue }
            used.insert(member.key)
            let shown = member.key == "justification" || value.contains(" ") || value.isEmpty
                ? "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : value
            let key = TerminalText.safe(member.key)
            let style: Style? = member.key == "reason" || member.key == "end_reason" ? .yellow : nil
            details.append(paint(key + "=", .dim) + paint(shown, style))
        }
        if !details.isEmpty { parts.append(details.joined(separator: " ")) }
        if type == "request", let mode = string(entry, "mode"), mode == "read-only" { parts.append(paint("read-only", .yellow)) }
        if let session = string(entry, "session_id") { parts.append(paint(session, .cyan)) }
        return parts.joined(separator: "  ")
    }

    /// `?name=value&…` from the logged query object.
    private func query(_ entry: AuditLogEntry) -> String {
        guard let members = entry["query"]?.members, !members.isEmpty else { return "" }
        let pairs = members.map { member -> String in
            let value: String
            switch member.value {
            case .string(let text): value = text
            case .array(let values): value = values.map { $0.stringValue ?? $0.jsonText }.joined(separator: ",")
            default: value = member.value.jsonText
            }
            return TerminalText.safe(member.key) + "=" + TerminalText.safe(value)
        }
        return "?" + pairs.joined(separator: "&")
    }

    private static func style(forType type: String) -> Style? {
        switch type {
        case "request": return nil
        case "login", "logout": return .green
        case "login_failed", "request_denied", "impersonation_denied": return .red
        case "impersonation_started", "impersonation_ended": return .magenta
        default: return .blue
        }
    }

    private static func style(forStatus status: Int64) -> Style? {
        switch status {
        case 200..<300: return .green
        case 300..<400: return .cyan
        case 400..<500: return .yellow
        case 500...: return .red
        default: return nil
        }
    }
}

/// The last `capacity` elements appended.
struct TailBuffer {
    let capacity: Int
    private var storage: [AuditLogEntry] = []
    private var start = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { storage.count }

    mutating func append(_ entry: AuditLogEntry) {
        guard capacity > 0 else { return }
        if storage.count < capacity {
            storage.append(entry)
        } else {
            storage[start] = entry
            start = (start + 1) % capacity
        }
    }

    var elements: [AuditLogEntry] { Array(storage[start...] + storage[..<start]) }
}

/// Follows the log file: reads what is appended, and when the path names another file
/// (rotated: renamed and replaced, so another inode) or the file shrank (truncated), reads the
/// rest of the old file, then any files rotated in between (named for their first seq), then
/// the new file from its start. Records already shown are not shown twice; a new chain (seq 1)
/// is always shown.
struct LogFollower {
    let path: String
    /// The last seq shown or skipped, so a catch-up after a rotation neither repeats nor misses.
    var lastSeq: UInt64?
    private var fd: Int32 = -1
    private var identity: (device: UInt64, inode: UInt64) = (0, 0)
    private var offset: Int64 = 0
    private var pending: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)
    private static let maxLine = 16 << 20

    init(path: String) {
        self.path = path
        _ = reopen()
    }

    var isOpen: Bool { fd >= 0 }

    private mutating func reopen() -> Bool {
        stop()
        let opened = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard opened >= 0 else { return false }
        var info = stat()
        guard fstat(opened, &info) == 0 else {
            _ = close(opened)
            return false
        }
        fd = opened
        identity = (UInt64(info.st_dev), UInt64(info.st_ino))
        offset = 0
        pending.removeAll()
        return true
    }

    mutating func stop() {
        if fd >= 0 { _ = close(fd) }
        fd = -1
    }

    /// Each record in the open file from where reading stopped (the first call: the whole file).
    mutating func readAll(_ body: (AuditLogEntry) -> Void) {
        while let lines = nextLines() {
            for line in lines {
                guard let entry = AuditLogEntry(line: line) else { continue }
                if let seq = entry.seq { lastSeq = seq }
                body(entry)
            }
        }
    }

    /// Records written since the last call, oldest first.
    mutating func poll() -> [AuditLogEntry] {
        var entries: [AuditLogEntry] = []
        readAll { entries.append($0) }
        var info = stat()
        guard path.withCString({ stat($0, &info) }) == 0 else { return entries }  // mid-rotation, or gone
        let now = (UInt64(info.st_dev), UInt64(info.st_ino))
        if fd >= 0 && now == identity {
            guard Int64(info.st_size) < offset else { return entries }
            lseek(fd, 0, SEEK_SET)  // truncated in place (copytruncate): from the start again
            offset = 0
            pending.removeAll()
            readUnseen(into: &entries)
            return entries
        }
        // Rotated (or appeared). Open the new file first: any rotation before that has renamed its
        // file already, so the listing below sees it; one after that is read twice, not missed.
        let opened = reopen()
        let floor = lastSeq ?? 0
        let rotated = AuditFiles.chainOrder(for: path).filter { $0 != path }.compactMap { file -> (UInt64, String)? in
            guard let seq = Self.rotatedSeq(file), seq > floor else { return nil }
            return (seq, file)
        }
        for (_, file) in rotated {
            try? AuditLogReader.forEachEntry(in: [file]) { entry in
                if let shown = unseen(entry) { entries.append(shown) }
                return true
            }
        }
        if opened { readUnseen(into: &entries) }
        return entries
    }

    private mutating func readUnseen(into entries: inout [AuditLogEntry]) {
        while let lines = nextLines() {
            for line in lines {
                if let entry = AuditLogEntry(line: line), let new = unseen(entry) { entries.append(new) }
            }
        }
    }

    /// The entry unless its record was shown already (a new chain starting at seq 1 always is new).
    private mutating func unseen(_ entry: AuditLogEntry) -> AuditLogEntry? {
        guard let seq = entry.seq else { return entry }
        if let lastSeq, seq <= lastSeq, seq != 1 { return nil }
        lastSeq = seq
        return entry
    }

    /// The first seq a rotated file's name gives (`audit.jsonl.000000001042[-N]`).
    private static func rotatedSeq(_ file: String) -> UInt64? {
        let name = file.split(separator: "/").last.map(String.init) ?? file
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let digits = name[name.index(after: dot)...].prefix { $0 != "-" }
        guard digits.count >= 12, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }

    /// The complete lines of the next read (maybe none), or nil at the end of what is written
    /// so far. A partial last line waits for its newline.
    private mutating func nextLines() -> [[UInt8]]? {
        guard fd >= 0 else { return nil }
        var got = 0
        while true {
            got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if got < 0 && errno == EINTR { continue }
            break
        }
        if got <= 0 { return nil }
        offset += Int64(got)
        var lines: [[UInt8]] = []
        var start = 0
        for index in 0..<got where chunk[index] == UInt8(ascii: "\n") {
            if pending.isEmpty {
                lines.append(Array(chunk[start..<index]))
            } else {
                pending.append(contentsOf: chunk[start..<index])
                lines.append(pending)
                pending.removeAll()
            }
            start = index + 1
        }
        if start < got { pending.append(contentsOf: chunk[start..<got]) }
        if pending.count > Self.maxLine { pending.removeAll() }  // not a record; skip it
        return lines
    }
}

/// SIGINT/SIGTERM end `tail -f` cleanly (exit 0, output flushed).
enum StopSignal {
    private static let flag = Atomic<Bool>(false)

    static var requested: Bool { flag.load(ordering: .relaxed) }

    static func install() {
        signal(SIGINT) { _ in StopSignal.flag.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in StopSignal.flag.store(true, ordering: .relaxed) }
    }

    /// Sleeps, returning early when a signal arrives.
    static func sleep(milliseconds: Int) {
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        _ = nanosleep(&request, nil)
    }
}

/// `audit export --format csv`.
enum CSVExport {
    /// Every key a record can have, in log order; members of no known key go to `extra` as JSON.
    static let columns: [String] = AuditRecord.keyOrder.filter { $0 != "prev" && $0 != "hash" } + ["extra", "prev", "hash"]
    private static let known = Set(AuditRecord.keyOrder)

    static var header: String { columns.joined(separator: ",") + "\r\n" }

    static func row(_ entry: AuditLogEntry) -> String {
        let members = entry.fields.members ?? []
        var cells: [String] = []
        cells.reserveCapacity(columns.count)
        for column in columns {
            if column == "extra" {
                let others = members.filter { !known.contains($0.key) }
                cells.append(others.isEmpty ? "" : cell(AuditValue.object(others).jsonText))
            } else if let value = members.first(where: { $0.key == column })?.value {
                cells.append(cell(text(value)))
            } else {
                cells.append("")
            }
        }
        return cells.joined(separator: ",") + "\r\n"
    }

    private static func text(_ value: AuditValue) -> String {
        switch value {
        case .null: return ""
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let number): return String(number)
        case .number(let literal): return literal
        case .string(let text): return text
        case .array, .object: return value.jsonText
        }
    }

    /// Escaped like the log (no raw controls), formula-neutralised, RFC 4180 quoted.
    static func cell(_ raw: String) -> String {
        var text = TerminalText.safe(raw)
        if let first = raw.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) {
            text = "'" + text
        }
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }) {
            text = "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }
}
