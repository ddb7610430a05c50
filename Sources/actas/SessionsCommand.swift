import ActAsConfig
import ActAsConsole
import ActAsCore
import ActAsSessions
import ActAsStore
import ArgumentParser
import Foundation

struct ConsentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent",
        abstract: "Grant or revoke a user's consent to be acted as (same rules as the console).",
        subcommands: [Grant.self, Revoke.self]
    )

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Consent for N hours (1 to impersonation.consent_max_hours).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Username.") var username: String
        @Option(help: "Hours, 1 to impersonation.consent_max_hours.") var hours: Int

        func run() async throws {
            let config = try options.load()
            let policy = ImpersonationPolicy(config: config)
            try await StoreAccess.changing(config) { directory in
                let user = try await directory.user(named: username)
                guard user.status.maySignIn else {
                    throw StoreError.invalid("user \(username) is \(user.status.rawValue): consent can only be given for active or invited users")
                }
                let consent: Consent
                do {
                    consent = try policy.consent(for: user.id, hours: hours, now: Date())
                } catch {
                    throw StoreError.invalid("--hours: \((error as? InvalidInput)?.sentence ?? "\(error)")")
                }
                try await directory.store.saveConsent(consent)
                print("\(username) consents until \(Console.timestamp(consent.expiresAt))")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke consent; sessions acting as the user end before the command returns.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Username.") var username: String

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.changing(config) { directory in
                let user = try await directory.user(named: username)
                guard var consent = try await directory.store.consent(userID: user.id), consent.revokedAt == nil,
                      consent.expiresAt > Date() else {
                    print("\(username) has no active consent")
                    return
                }
                consent.revokedAt = Date()
                try await directory.store.saveConsent(consent)
                print("revoked \(username)'s consent")
            }
        }
    }
}

struct Sessions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Impersonation sessions.",
        subcommands: [List.self, End.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List impersonation sessions, newest first.")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Only sessions still running.") var active = false
        @Flag(help: "JSON output.") var json = false
        @Option(help: "At most this many.") var limit = 100

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.withDirectory(config) { directory in
                let users = Dictionary(uniqueKeysWithValues: try await directory.store.users().map { ($0.id, $0.username) })
                var sessions = try await directory.store.impersonations(activeOnly: active)
                sessions = Array(sessions.prefix(limit))
                if json {
                    printJSON(sessions.map { session -> [String: Any] in
                        [
                            "id": session.id, "actor": users[session.actorID] ?? session.actorID, "target": users[session.targetID] ?? session.targetID,
                            "reason": session.reason, "mode": session.mode.rawValue, "started_at": rfc3339(session.startedAt),
                            "expires_at": rfc3339(session.expiresAt), "ended_at": rfc3339(session.endedAt),
                            "end_reason": session.endReason.map { $0.rawValue as Any } ?? NSNull(),
                        ]
                    })
                    return
                }
                var rows = [["ID", "ACTOR", "TARGET", "MODE", "STARTED", "ENDS/ENDED", "END REASON", "REASON"]]
                for session in sessions {
                    rows.append([
                        session.id, users[session.actorID] ?? session.actorID, users[session.targetID] ?? session.targetID, session.mode.rawValue,
                        shortDate(session.startedAt), shortDate(session.endedAt ?? session.expiresAt), session.endReason?.rawValue ?? "active",
                        String(session.reason.prefix(60)),
                    ])
                }
                printTable(rows)
            }
        }
    }

    struct End: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End a session now (end reason ended_by_operator); the administrator is told on their next request.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Session id (imp_…).") var id: String

        func run() async throws {
            let config = try options.load()
            try await StoreAccess.changing(config) { directory in
                guard try await directory.store.impersonation(id: id) != nil else { throw StoreError.notFound("no session with id \(id)") }
                guard try await directory.store.endImpersonation(id: id, at: Date(), reason: .endedByOperator, notice: true) != nil else {
                    throw StoreError.invalid("session \(id) has already ended")
                }
                print("ended \(id)")
            }
        }
    }
}
