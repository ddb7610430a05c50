import Foundation
import TOMLKit

/// One problem with the configuration, printed as `file:line: key: message`.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var key: String
    public var message: String

    public init(file: String, line: Int, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String { "\(file):\(line): \(key): \(message)" }
}

public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// Where a value came from, for error messages.
enum ValueOrigin {
    case file(line: Int)
    case environment(String)
}

/// Loads `proxy.conf`: TOML syntax, then every key against the schema, then env overrides,
/// then the typed configuration with its cross-key rules. All problems are collected, so
/// `check` shows every one of them at once.
public struct ConfigLoader {
    public var path: String
    public var environment: [String: String]

    public init(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.path = path
        self.environment = environment
    }

    public struct Loaded: Sendable {
        public var config: ActAsConfig
        public var warnings: [String]
    }

    public func load() -> Result<Loaded, ConfigErrors> {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            return .failure(ConfigErrors(issues: [ConfigIssue(file: path, line: 0, key: "-", message: "cannot read: \(Self.reason(error))")]))
        }
        return load(text: text)
    }

    public func load(text: String) -> Result<Loaded, ConfigErrors> {
        var issues: [ConfigIssue] = []
        var warnings: [String] = []
        let lines = LineLocator(text: text)

        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let key = lines.keyAt(line: error.source.begin.line) ?? "-"
            return .failure(ConfigErrors(issues: [ConfigIssue(file: path, line: error.source.begin.line, key: key, message: "TOML syntax: \(error.description)")]))
        } catch {
            return .failure(ConfigErrors(issues: [ConfigIssue(file: path, line: 0, key: "-", message: "TOML syntax: \(error)")]))
        }

        var values: [String: ConfigValue] = [:]
        var origins: [String: ValueOrigin] = [:]
        // Problems with a known key's file value wait until we know whether the environment
        // replaces that value: the effective configuration is what must be valid.
        var fileValueIssues: [ConfigIssue] = []
        walk(table, section: "", lines: lines, values: &values, origins: &origins, issues: &issues, valueIssues: &fileValueIssues)
        let fileValues = values, fileOrigins = origins

        // Environment overrides, resolved against the known keys.
        var knownEnvironment: Set<String> = ["ACTAS_CONFIG"]
        var shadowed: [String: String] = [:]  // key → the variable that replaces its file value
        for spec in ConfigSchema.keys {
            knownEnvironment.insert(spec.environmentName)
            guard let raw = environment[spec.environmentName] else { continue }
            shadowed[spec.fullName] = spec.environmentName
            let origin = ValueOrigin.environment(spec.environmentName)
            switch Self.convert(environment: raw, kind: spec.kind) {
            case .success(let value):
                values[spec.fullName] = value
                origins[spec.fullName] = origin
            case .failure(let error):
                issues.append(issue(origin, spec.fullName, error.message))
            }
        }
        for name in environment.keys.sorted() where name.hasPrefix("ACTAS_") && !knownEnvironment.contains(name) {
            warnings.append("environment variable \(name) matches no configuration key; ignored")
        }

        for issue in fileValueIssues {
            if let variable = shadowed[issue.key] {
                warnings.append(Self.shadowedWarning(issue, by: variable))
            } else {
                issues.append(issue)
            }
        }
        if !shadowed.isEmpty {
            // The typed rules on the file's own values, for the keys the environment replaces:
            // a bad value there is never used, but the operator should still hear about it.
            var fileOnly = ConfigBuilder(file: path, values: fileValues, origins: fileOrigins,
                                         alreadyReported: Set(fileValueIssues.map(\.key)))
            _ = fileOnly.build()
            for issue in fileOnly.issues where issue.file == path {
                if let variable = shadowed[issue.key], case .file? = fileOrigins[issue.key] {
                    warnings.append(Self.shadowedWarning(issue, by: variable))
                }
            }
        }

        // The typed rules run even after key problems, so `check` reports every problem at once;
        // a key already reported (its value was dropped, so its default stood in) is not
        // reported again for what the default implies.
        var builder = ConfigBuilder(file: path, values: values, origins: origins, alreadyReported: Set(issues.map(\.key)))
        let config = builder.build()
        issues += builder.issues
        guard issues.isEmpty, let config else { return .failure(ConfigErrors(issues: issues)) }
        return .success(Loaded(config: config, warnings: warnings + builder.warnings))
    }

    /// A file value the environment replaces: not an error (it is never used), but named with
    /// its line so it gets fixed before the override goes away.
    static func shadowedWarning(_ issue: ConfigIssue, by variable: String) -> String {
        "\(issue.description) (not used: \(variable) overrides it)"
    }

    private func walk(
        _ table: TOMLTable, section: String, lines: LineLocator,
        values: inout [String: ConfigValue], origins: inout [String: ValueOrigin], issues: inout [ConfigIssue],
        valueIssues: inout [ConfigIssue]
    ) {
        for name in table.keys {
            guard let value = table[name] else { continue }
            let qualified = section.isEmpty ? name : "\(section).\(name)"
            if let nested = value.table, ConfigSchema.key(section, name)?.kind.isMap != true {
                if ConfigSchema.sections.contains(qualified) {
                    walk(nested, section: qualified, lines: lines, values: &values, origins: &origins, issues: &issues, valueIssues: &valueIssues)
                } else {
                    issues.append(ConfigIssue(file: path, line: lines.line(section: qualified, key: nil), key: qualified, message: "unknown section"))
                }
                continue
            }
            let line = lines.line(section: section, key: name)
            guard !section.isEmpty, let spec = ConfigSchema.key(section, name) else {
                let hint = Self.suggestion(for: qualified).map { " (did you mean \($0)?)" } ?? ""
                issues.append(ConfigIssue(file: path, line: line, key: qualified, message: "unknown key\(hint)"))
                continue
            }
            switch Self.convert(toml: value, kind: spec.kind) {
            case .success(let converted):
                values[spec.fullName] = converted
                origins[spec.fullName] = .file(line: line)
            case .failure(let error):
                valueIssues.append(ConfigIssue(file: path, line: line, key: spec.fullName, message: error.message))
            }
        }
    }

    private func issue(_ origin: ValueOrigin, _ key: String, _ message: String) -> ConfigIssue {
        switch origin {
        case .file(let line): return ConfigIssue(file: path, line: line, key: key, message: message)
        case .environment(let name): return ConfigIssue(file: "env", line: 0, key: key, message: "\(name): \(message)")
        }
    }

    static func suggestion(for qualified: String) -> String? {
        let candidates = ConfigSchema.keys.map(\.fullName)
        let best = candidates.map { ($0, editDistance($0, qualified)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= 3 else { return nil }
        return best.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
            let message = strerror(Int32(underlying.code)) {
            return String(cString: message)
        }
        return nsError.localizedDescription
    }

    // MARK: conversion

    static func convert(toml value: any TOMLValueConvertible, kind: ConfigKind) -> Result<ConfigValue, ConfigValueError> {
        switch kind {
        case .stringMap:
            return convertMap(toml: value)
        case .bool:
            guard value.type == .bool, let bool = value.bool else { return .failure(.init("expected true or false")) }
            return .success(.bool(bool))
        case .int(let range):
            guard value.type == .int, let int = value.int else { return .failure(.init("expected an integer")) }
            return checkRange(int, range)
        case .stringList, .choiceList:
            guard let array = value.array else { return .failure(.init("expected a list of strings, e.g. [\"a\", \"b\"]")) }
            var strings: [String] = []
            for element in array {
                guard element.type == .string, let string = element.string else {
                    return .failure(.init("expected a list of strings, e.g. [\"a\", \"b\"]"))
                }
                strings.append(string)
            }
            return checkList(strings, kind)
        case .size:
            if value.type == .int, let int = value.int { return convert(string: String(int), kind: kind) }
            guard value.type == .string, let string = value.string else { return .failure(.init("expected a size like \"32KB\"")) }
            return convert(string: string, kind: kind)
        default:
            guard value.type == .string, let string = value.string else { return .failure(.init("expected a string")) }
            return convert(string: string, kind: kind)
        }
    }

    static func convert(environment raw: String, kind: ConfigKind) -> Result<ConfigValue, ConfigValueError> {
        switch kind {
        case .bool:
            switch raw.lowercased() {
            case "true", "1", "yes", "on": return .success(.bool(true))
            case "false", "0", "no", "off": return .success(.bool(false))
            default: return .failure(.init("expected true or false"))
            }
        case .int(let range):
            guard let int = Int(raw.trimmingCharacters(in: .whitespaces)) else { return .failure(.init("expected an integer")) }
            return checkRange(int, range)
        case .stringMap:
            return convertMap(environment: raw)
        case .stringList, .choiceList:
            let items = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return checkList(items, kind)
        default:
            return convert(string: raw, kind: kind)
        }
    }

    static func convert(string: String, kind: ConfigKind) -> Result<ConfigValue, ConfigValueError> {
        switch kind {
        case .string:
            return .success(.string(string))
        case .duration:
            return ConfigDuration.parse(string).map(ConfigValue.duration)
        case .size(let range):
            return ConfigSize.parse(string).flatMap { size in
                range.contains(size)
                    ? .success(.size(size))
                    : .failure(.init("must be between \(formatSize(range.lowerBound)) and \(formatSize(range.upperBound))"))
            }
        case .choice(let options):
            return options.contains(string)
                ? .success(.string(string))
                : .failure(.init("must be one of \(options.map { "\"\($0)\"" }.joined(separator: ", "))"))
        case .address(let optional):
            if string.isEmpty {
                return optional ? .success(.address(nil)) : .failure(.init("an address is required"))
            }
            return SocketAddressSpec.parse(string).map { .address($0) }
        case .bool, .int, .stringList, .choiceList, .stringMap:
            return .failure(.init("unexpected string"))
        }
    }

    static func checkRange(_ value: Int, _ range: ClosedRange<Int>) -> Result<ConfigValue, ConfigValueError> {
        range.contains(value) ? .success(.int(value)) : .failure(.init("must be between \(range.lowerBound) and \(range.upperBound)"))
    }

    static func checkList(_ items: [String], _ kind: ConfigKind) -> Result<ConfigValue, ConfigValueError> {
        if case .choiceList(let options) = kind {
            for item in items where !options.contains(item) {
                return .failure(.init("\"\(item)\" is not one of \(options.map { "\"\($0)\"" }.joined(separator: ", "))"))
            }
        }
        return .success(.list(items))
    }

    static func formatSize(_ size: Int64) -> String {
        if size >= 1 << 30, size % (1 << 30) == 0 { return "\(size >> 30)GB" }
        if size >= 1 << 20, size % (1 << 20) == 0 { return "\(size >> 20)MB" }
        if size >= 1 << 10, size % (1 << 10) == 0 { return "\(size >> 10)KB" }
        return "\(size)B"
    }
}

/// Finds the line of `[section]` headers and `key = value` lines, for error messages.
/// TOMLKit does not expose source positions of values, only of syntax errors.
struct LineLocator {
    private var keyLines: [String: Int] = [:]
    private var sectionLines: [String: Int] = [:]
    private var keysByLine: [Int: String] = [:]

    init(text: String) {
        var section = ""
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") {
                let inner = line.drop { $0 == "[" }.prefix { $0 != "]" }
                section = Self.normalise(String(inner))
                if sectionLines[section] == nil { sectionLines[section] = lineNumber }
                keysByLine[lineNumber] = section
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = Self.normalise(String(line[..<equals]))
            let parts = key.split(separator: ".").map(String.init)
            let fullSection = ([section] + parts.dropLast()).filter { !$0.isEmpty }.joined(separator: ".")
            let fullKey = fullSection.isEmpty ? parts.last ?? key : "\(fullSection).\(parts.last ?? key)"
            if keyLines[fullKey] == nil { keyLines[fullKey] = lineNumber }
            keysByLine[lineNumber] = fullKey
        }
    }

    /// Strips spaces and quotes: `[ "auth" . oidc ]` → `auth.oidc`.
    private static func normalise(_ text: String) -> String {
        text.split(separator: ".").map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }
            .joined(separator: ".")
    }

    func line(section: String, key: String?) -> Int {
        if let key {
            let full = section.isEmpty ? key : "\(section).\(key)"
            if let line = keyLines[full] { return line }
        }
        return sectionLines[section] ?? 1
    }

    func keyAt(line: Int) -> String? { keysByLine[line] }
}
