import ActAsConfig
import ActAsConsole
import ActAsCore
import ActAsStore
import ActAsStorePostgres
import ArgumentParser
import Foundation

/// Opens the configured store for a command (migrating it if needed).
enum StoreAccess {
    static func open(_ config: ActAsConfig, applicationName: String = "actas") async throws -> any Store {
        switch config.store.kind {
        case .sqlite(let path):
            do {
                let store = try await SQLiteStore.open(path: path)
                try await store.migrate()
                try await store.checkSchemaVersion()
                return store
            } catch {
                Diagnostics.error("actas: \(TerminalText.safe("\(error)"))")  // one line, even when the error echoes a value with a line break
                throw ExitCode(1)
            }
        case .postgres(let url):
            do {
                let store = try await PostgresStore.open(PostgresEndpoint(url), poolSize: config.store.poolSize, applicationName: applicationName)
                do {
                    try await store.migrate()
                } catch {
                    await store.close()
                    throw error
                }
                return store
            } catch {
                Diagnostics.error("actas: \(TerminalText.safe("\(error)"))")  // one line, even when the error echoes a value with a line break
                throw ExitCode(1)
            }
        }
    }

    /// `withDirectory` for commands that change who may do what (SPEC §10.1): after `body`
    /// wrote its change, every running instance must confirm it applied it; exit 3 when one
    /// cannot (the change stays stored).
    static func changing<T>(_ config: ActAsConfig, _ body: (Directory) async throws -> T) async throws -> T {
        try await withDirectory(config) { directory in
            let result = try await body(directory)
            try await ChangeAcknowledgement.waitForInstances(directory.store)
            return result
        }
    }

    /// Runs `body` with a directory on the store, closing it afterwards; store and input
    /// errors become a one-line reason and exit 1.
    static func withDirectory<T>(_ config: ActAsConfig, _ body: (Directory) async throws -> T) async throws -> T {
        let store = try await open(config)
        let directory = Directory(store: store, live: nil, knownRoles: config.roles.order)
        do {
            let result = try await body(directory)
            await store.close()
            return result
        } catch let error as ExitCode {
            await store.close()
            throw error
        } catch {
            await store.close()
            Diagnostics.error("actas: \(TerminalText.safe("\(error)"))")  // one line, even when the error echoes a value with a line break
            throw ExitCode(1)
        }
    }
}

/// Human-readable dates for tables: `2026-11-06 10:15` UTC.
func shortDate(_ date: Date?) -> String {
    guard let date else { return "-" }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm"
    return formatter.string(from: date)
}

/// RFC 3339 for JSON output, `null` when there is no date.
func rfc3339(_ date: Date?) -> Any {
    date.map(Console.timestamp) ?? NSNull()
}

/// Prints rows as aligned columns (a header row first).
/// Every cell is escaped for the terminal (a name holding U+202E or ESC cannot reorder or
/// recolour the row).
func printTable(_ unescapedRows: [[String]]) {
    let rows = unescapedRows.map { $0.map(TerminalText.safe) }
    guard let first = rows.first else { return }
    var widths = [Int](repeating: 0, count: first.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    for row in rows {
        let line = row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
        print(line)
    }
}

func printJSON(_ object: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
    print(String(decoding: data, as: UTF8.self))
}

/// A password from `--password-stdin` (first line of standard input) or `--password-file`.
/// Never from an argument: those show up in `ps` and shell history.
struct PasswordOptions: ParsableArguments {
    @Flag(name: .long, help: "Read the password from the first line of standard input.")
    var passwordStdin = false

    @Option(name: .long, help: ArgumentHelp("Read the password from a file (first line).", valueName: "file"))
    var passwordFile: String?

    func read() throws -> String? {
        if passwordStdin, passwordFile != nil {
            throw ValidationError("use either --password-stdin or --password-file, not both")
        }
        if passwordStdin {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw ValidationError("--password-stdin: standard input had no password")
            }
            return line
        }
        if let passwordFile {
            guard let data = FileManager.default.contents(atPath: passwordFile) else {
                throw ValidationError("--password-file: cannot read \(passwordFile)")
            }
            let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            guard !line.isEmpty else { throw ValidationError("--password-file: \(passwordFile) is empty") }
            return line
        }
        return nil
    }
}
