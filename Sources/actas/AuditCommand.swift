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
            let format = AuditRecordFormat(json: json, colour: !json && TerminalText.wantsColour(fd: STDOUT_FILENO))

            var follower = AuditLogFollower(path: path)
            var shown = AuditTailBuffer(capacity: lines)
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
                    var inFile = AuditTailBuffer(capacity: lines - shown.count - earlier.count)
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
            case .csv: sink.emit(AuditCSV.header)
            }
            do {
                try AuditLogReader.forEachEntry(in: sources, matching: filter) { entry in
                    switch format {
                    case .json:
                        sink.emit(count == 0 ? "\n" : ",\n")
                        sink.emit(AuditRecordFormat.safeLine(entry))
                    case .csv:
                        sink.emit(AuditCSV.row(entry))
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

