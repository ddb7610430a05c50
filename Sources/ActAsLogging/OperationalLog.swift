import ActAsCore
import Foundation
import Logging

/// The process's one log handler for operational messages (start, reload, drain, database
/// reconnects and resyncs, outage and recovery): a line a person reads on a terminal, a JSON
/// object a line for a log collector otherwise. Every value is escaped (`TerminalText`), so no
/// message, metadata value or error text can forge a line or drive the terminal.
public struct OperationalLogHandler: LogHandler {
    public enum Format: Sendable, Equatable {
        /// `2026-12-07T11:02:06.123Z warning actas.store: message key=value`
        case text
        /// `{"ts":"…","level":"warning","logger":"actas.store","message":"…","source":"…",…}`
        case json

        /// Text on a terminal, JSON lines when stderr is a file, a pipe or a journal.
        public static func forStandardError() -> Format {
            isatty(STDERR_FILENO) != 0 ? .text : .json
        }
    }

    public let label: String
    public let format: Format
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let write: @Sendable (String) -> Void

    public init(label: String, format: Format, write: @escaping @Sendable (String) -> Void = OperationalLogHandler.standardError) {
        self.label = label
        self.format = format
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        let entry = OperationalLogLine(
            time: Date(), level: event.level, label: label, message: event.message.description,
            source: event.source, error: event.error.map { String(describing: $0) }, metadata: merged)
        write(format == .text ? entry.text() : entry.json())
    }

    /// One `write(2)` per line: lines from several threads do not interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// One log line, formatted without I/O (the unit tests call these).
public struct OperationalLogLine: Sendable {
    public var time: Date
    public var level: Logger.Level
    public var label: String
    public var message: String
    public var source: String
    public var error: String?
    public var metadata: Logger.Metadata

    public init(time: Date, level: Logger.Level, label: String, message: String, source: String,
                error: String? = nil, metadata: Logger.Metadata = [:]) {
        self.time = time
        self.level = level
        self.label = label
        self.message = message
        self.source = source
        self.error = error
        self.metadata = metadata
    }

    private static let timestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// `ts level label: message key=value …` — one line: a line break in the message is shown
    /// as `\u000a`, like every other control character.
    public func text() -> String {
        var line = "\(time.formatted(Self.timestamp)) \(level.rawValue) \(TerminalText.safe(label)): \(TerminalText.safe(message))"
        if let error { line += " error=\(Self.textValue(error))" }
        for key in metadata.keys.sorted() {
            line += " \(TerminalText.safe(key))=\(Self.textValue(Self.flat(metadata[key]!)))"
        }
        return line
    }

    /// A JSON object on one line: `ts`, `level`, `logger`, `message`, `source`, then `error` and
    /// `metadata` when there are any.
    public func json() -> String {
        var line = "{\"ts\":\(Self.quoted(time.formatted(Self.timestamp))),\"level\":\(Self.quoted(level.rawValue))"
        line += ",\"logger\":\(Self.quoted(label)),\"message\":\(Self.quoted(message)),\"source\":\(Self.quoted(source))"
        if let error { line += ",\"error\":\(Self.quoted(error))" }
        if !metadata.isEmpty { line += ",\"metadata\":\(Self.json(.dictionary(metadata)))" }
        return line + "}"
    }

    private static func textValue(_ value: String) -> String {
        let safe = TerminalText.safe(value)
        let plain = !safe.isEmpty && !safe.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" })
        return plain ? safe : quoted(value)
    }

    private static func flat(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: json(value)
        }
    }

    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): quoted(text)
        case .stringConvertible(let convertible): quoted(convertible.description)
        case .array(let values): "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let entries):
            "{" + entries.keys.sorted().map { "\(quoted($0)):\(json(entries[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string; besides what JSON requires, everything `TerminalText` would escape is
    /// written as `\uXXXX` too, so the line is safe to `cat` as well as to parse.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if TerminalText.mustEscape(scalar) {
                    for unit in String(scalar).utf16 {
                        let hex = String(unit, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

public enum OperationalLog {
    /// Once, at process start, before any `Logger` is made (the CLI's `main`).
    public static func bootstrap(format: OperationalLogHandler.Format = .forStandardError()) {
        LoggingSystem.bootstrap { label in OperationalLogHandler(label: label, format: format) }
    }
}
