import ActAsConfig
import ActAsCore
import ActAsStore
import ArgumentParser
import Foundation

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "API tokens for scripts (Authorization: Bearer actas_…).",
        discussion: "Only a hash of each token is stored: `create` shows the token once. Tokens act as their user but cannot impersonate.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token for a user and print it (alone, on stdout).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Username.") var username: String
        @Option(help: "A label to recognise the token by.") var name: String = ""
        @Flag(help: "Print {\"id\", \"token\"} as JSON.") var json = false

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.changing(config) { directory in
                let (token, record) = try await directory.createToken(for: username, name: name)
                if json {
                    printJSON(["id": record.id, "token": token])
                } else {
                    print(token)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (ids, never the tokens).")
        @OptionGroup var options: ConfigOption
        @Option(help: "Only this user's tokens.") var user: String?
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.withDirectory(config) { directory in
                let users = Dictionary(uniqueKeysWithValues: try await directory.store.users().map { ($0.id, $0.username) })
                var filter: String?
                if let user { filter = try await directory.user(named: user).id }
                let tokens = try await directory.store.tokens(userID: filter)
                if json {
                    printJSON(tokens.map { token -> [String: Any] in
                        ["id": token.id, "user": users[token.userID] ?? token.userID, "name": token.name,
                         "created_at": rfc3339(token.createdAt), "revoked_at": rfc3339(token.revokedAt)]
                    })
                } else {
                    var rows = [["ID", "USER", "NAME", "CREATED", "REVOKED"]]
                    for token in tokens {
                        rows.append([token.id, users[token.userID] ?? token.userID, token.name, shortDate(token.createdAt), shortDate(token.revokedAt)])
                    }
                    printTable(rows)
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by id (see `tokens list`).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Token id (tok_…).") var id: String

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.changing(config) { directory in
                let token = try await directory.revokeToken(id: id)
                print("revoked \(token.id)")
            }
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The key ring that signs X-ActAs-Jwt-Assertion.",
        subcommands: [Rotate.self, List.self]
    )

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new signing key. The old key stays in the JWKS for 24 hours; every running instance signs with the new key before the command returns.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.changing(config) { directory in
                let (new, retired) = try await KeyManager.rotate(directory.store)
                print("signing key is now \(new)" + (retired.map { "; \($0) stays published for 24 hours" } ?? ""))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List signing keys (kid, created, retired).")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.withDirectory(config) { directory in
                var rows = [["KID", "CREATED", "RETIRED"]]
                for key in try await directory.store.signingKeys().reversed() {
                    rows.append([key.kid, shortDate(key.createdAt), key.retiredAt == nil ? "signing" : shortDate(key.retiredAt)])
                }
                printTable(rows)
            }
        }
    }
}
