import ActAsStore
import Logging

/// Users for a first run with the demo app (`demo.enabled`), created only when the directory
/// is empty. Their password is public (README), which is why this needs the demo switch.
enum DemoUsers {
    static let password = "actas-demo"

    static func seedIfEmpty(_ directory: Directory, logger: Logger) async throws {
        guard try await directory.store.users().isEmpty else { return }
        func user(_ username: String, _ name: String, _ role: String, _ orgUnit: String, _ groups: [String]) -> UserRecordInput {
            var input = UserRecordInput(username: username)
            input.name = name
            input.email = "\(username)@demo.example"
            input.role = role
            input.orgUnit = orgUnit
            input.groups = groups
            input.password = password
            return input
        }
        let users = [
            user("admin", "Ada Admin", "super_admin", "acme", ["admins", "it"]),
            user("hr", "Harriet Hughes", "hr_admin", "acme/emea", ["hr"]),
            user("alice", "Alice Andersen", "employee", "acme/emea/sales", ["sales"]),
            user("bob", "Bob Brown", "employee", "acme/us/support", ["support"]),
            user("carol", "Carol Chen", "manager", "acme/emea", ["managers", "sales"]),
        ]
        _ = try await directory.save(users)
        logger.warning("demo: created users admin, hr, alice, bob and carol with the password \"\(password)\" (demo only)")
    }
}
