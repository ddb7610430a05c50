import ActAsConfig
import ActAsStore
import ActAsStorePostgres
import ArgumentParser
import Foundation

/// `actas store migrate` (SPEC §10.2): moves a single-node installation onto PostgreSQL.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Work on stores directly (not through proxy.conf).",
        subcommands: [Migrate.self]
    )

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy users, consents, tokens, keys and session records from one store to another.",
            discussion: """
                --from is "sqlite:PATH" or "postgres://USER[:PASS]@HOST:PORT/DB?sslmode=…"; --to is a PostgreSQL URL \
                of an empty database (it is migrated first). All or nothing: one transaction on the target, which must \
                have no users yet. Prints what was copied. Stop the instances on the source first. Exit 1 when \
                nothing was copied.
                """
        )

        @Option(name: .long, help: ArgumentHelp("The store to copy from.", valueName: "url"))
        var from: String

        @Option(name: .long, help: ArgumentHelp("The PostgreSQL store to copy into.", valueName: "url"))
        var to: String

        func run() async throws {
            guard case .success(let target) = PostgresURL.parse(to) else {
                throw ValidationError("--to: \(PostgresURL.isPostgres(to) ? Self.problem(to) : "must be a postgres:// URL")")
            }
            let source: any Store
            do {
                source = try await Self.open(from)
            } catch let error as ValidationError {
                throw error
            } catch {
                Diagnostics.error("actas: --from: \(error)")
                throw ExitCode(1)
            }
            let contents: StoreContents
            do {
                contents = try await StoreContents.read(from: source)
                await source.close()
            } catch {
                await source.close()
                Diagnostics.error("actas: cannot read \(from): \(error)")
                throw ExitCode(1)
            }
            let destination: PostgresStore
            do {
                destination = try await PostgresStore.open(PostgresEndpoint(target), poolSize: 1, applicationName: "actas store migrate")
            } catch {
                Diagnostics.error("actas: --to: \(error)")
                throw ExitCode(1)
            }
            do {
                try await destination.migrate()
                try await destination.importContents(contents)
                await destination.close()
            } catch {
                await destination.close()
                Diagnostics.error("actas: nothing was copied: \(error)")
                throw ExitCode(1)
            }
            print("copied into \(target.redacted):")
            for (name, count) in contents.counts { print("  \(name): \(count)") }
        }

        static func problem(_ url: String) -> String {
            if case .failure(let error) = PostgresURL.parse(url) { return error.message }
            return ""
        }

        static func open(_ url: String) async throws -> any Store {
            if url.hasPrefix("sqlite:") {
                var path = String(url.dropFirst("sqlite:".count))
                if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
                guard !path.isEmpty else { throw ValidationError("--from: sqlite: needs a file path") }
                guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("--from: \(path) does not exist") }
                let store = try await SQLiteStore.open(path: path)
                do {
                    try await store.checkSchemaVersion()
                    try await store.migrate()
                } catch {
                    await store.close()
                    throw error
                }
                return store
            }
            switch PostgresURL.parse(url) {
            case .success(let parsed):
                let store = try await PostgresStore.open(PostgresEndpoint(parsed), poolSize: 1, applicationName: "actas store migrate")
                do {
                    try await store.migrate()
                } catch {
                    await store.close()
                    throw error
                }
                return store
            case .failure(let error):
                throw ValidationError("--from: \(PostgresURL.isPostgres(url) ? error.message : "must be sqlite:PATH or a postgres:// URL")")
            }
        }
    }
}
