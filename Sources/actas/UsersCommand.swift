import ActAsConfig
import ActAsCore
import ActAsStore
import ArgumentParser
import Foundation

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the user directory.",
        discussion: """
            Users have id, username, email, name, role (one of roles.order), groups, org_unit, \
            status (active, invited, suspended, deleted) and last_login. Passwords are hashed \
            with scrypt and never printed. A change is enforced by every running instance before \
            the command returns (exit 3 when one cannot confirm it; see `actas instances`).
            """,
        subcommands: [Add.self, List.self, Show.self, Set.self, Suspend.self, Delete.self, Import.self]
    )

    /// The fields `add` and `set` share.
    struct Fields: ParsableArguments {
        @Option(help: "Email address.") var email: String?
        @Option(help: "Display name.") var name: String?
        @Option(help: "Role, one of roles.order.") var role: String?
        @Option(help: ArgumentHelp("Groups, comma-separated (\"\" for none).", valueName: "a,b")) var groups: String?
        @Option(name: .customLong("org-unit"), help: ArgumentHelp("Organisation unit path, e.g. acme/emea/sales.", valueName: "path")) var orgUnit: String?
        @Option(help: "active, invited, suspended or deleted.") var status: String?

        func apply(to input: inout UserRecordInput) throws {
            input.email = email
            input.name = name
            input.role = role
            input.groups = groups.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
            input.orgUnit = orgUnit
            if let status {
                guard let parsed = User.Status(rawValue: status) else {
                    throw ValidationError("--status must be one of active, invited, suspended, deleted")
                }
                input.status = parsed
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Username.") var username: String
        @Option(help: "Id (default: a new usr_… id).") var id: String?
        @OptionGroup var fields: Fields
        @OptionGroup var password: PasswordOptions

        func run() async throws {
            let config = try options.load()
            var input = UserRecordInput(username: username)
            input.id = id
            try fields.apply(to: &input)
            input.password = try password.read()
            try await StoreAccess.changing(config) { directory in
                _ = try await directory.save([input], mustBeNew: true)
                let user = try await directory.user(named: username)
                print("added \(user.username) (\(user.id)), role \(user.role), \(user.status.rawValue)\(user.passwordHash == nil ? ", no password" : "")")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: ConfigOption
        @Option(help: "Only users with this status.") var status: String?
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.withDirectory(config) { directory in
                var users = try await directory.store.users()
                if let status { users = users.filter { $0.status.rawValue == status } }
                if json {
                    printJSON(users.map(Users.jsonObject))
                } else {
                    var rows = [["USERNAME", "NAME", "EMAIL", "ROLE", "STATUS", "ORG UNIT", "GROUPS", "LAST LOGIN"]]
                    for user in users {
                        rows.append([user.username, user.name, user.email, user.role, user.status.rawValue, user.orgUnit,
                                     user.groups.joined(separator: ","), shortDate(user.lastLogin)])
                    }
                    printTable(rows)
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one user.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Username.") var username: String
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.withDirectory(config) { directory in
                let user = try await directory.user(named: username)
                if json {
                    printJSON(Users.jsonObject(user))
                } else {
                    printTable([
                        ["id", user.id], ["username", user.username], ["email", user.email], ["name", user.name], ["role", user.role],
                        ["groups", user.groups.joined(separator: ",")], ["org_unit", user.orgUnit], ["status", user.status.rawValue],
                        ["last_login", shortDate(user.lastLogin)], ["password", user.passwordHash == nil ? "not set" : "set"],
                        ["created", shortDate(user.createdAt)], ["updated", shortDate(user.updatedAt)],
                    ])
                }
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a user's fields or password.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Username.") var username: String
        @OptionGroup var fields: Fields
        @OptionGroup var password: PasswordOptions

        func run() async throws {
            let config = try options.load()
            var input = UserRecordInput(username: username)
            try fields.apply(to: &input)
            input.password = try password.read()
            try await StoreAccess.changing(config) { directory in
                _ = try await directory.save([input], mustExist: true)
                let user = try await directory.user(named: username)
                print("updated \(user.username): role \(user.role), \(user.status.rawValue)")
            }
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Suspend a user: they cannot sign in and their sessions end.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Username.") var username: String

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.changing(config) { directory in
                let user = try await directory.setStatus(username, .suspended)
                print("suspended \(user.username)")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a user: status deleted, sessions end; the record stays for the audit trail.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Username.") var username: String

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.changing(config) { directory in
                let user = try await directory.setStatus(username, .deleted)
                print("deleted \(user.username)")
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update users from a JSON array or a CSV file, by username.",
            discussion: """
                Fields/columns: id, username, email, name, role, groups, org_unit, status, last_login, \
                password (all but username optional; in CSV, groups are separated by ;). Existing users \
                keep the fields a record leaves out. All or nothing: any error changes nothing.
                """
        )
        @OptionGroup var options: ConfigOption
        @Argument(help: "The file (.json or .csv; - for standard input).") var file: String
        @Flag(name: .long, help: "Check the file and report what would change, without changing anything.") var dryRun = false

        func run() async throws {
            let config = try options.load()
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let contents = FileManager.default.contents(atPath: file) else {
                    Diagnostics.error("actas: cannot read \(file)")
                    throw ExitCode(1)
                }
                data = contents
            }
            let records: [UserRecordInput]
            do {
                records = try UserImport.parse(data, file: file == "-" ? "stdin" : file)
            } catch {
                Diagnostics.error("\(error)")
                throw ExitCode(1)
            }
            try await StoreAccess.withDirectory(config) { directory in
                if dryRun {
                    var created = 0
                    var updated = 0
                    for record in records {
                        if try await directory.store.user(username: record.username) == nil { created += 1 } else { updated += 1 }
                    }
                    print("would create \(created), update \(updated) (\(records.count) records); nothing changed")
                    return
                }
                let summary = try await directory.save(records)
                print("imported \(records.count) users: \(summary.created.count) created, \(summary.updated.count) updated")
                try await ChangeAcknowledgement.waitForInstances(directory.store)
            }
        }
    }

    static func jsonObject(_ user: User) -> [String: Any] {
        [
            "id": user.id, "username": user.username, "email": user.email, "name": user.name, "role": user.role,
            "groups": user.groups, "org_unit": user.orgUnit, "status": user.status.rawValue, "last_login": rfc3339(user.lastLogin),
        ]
    }
}
