import ActAsStore
import ArgumentParser
import Foundation

struct Instances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the running instances that share the store (id, admin address, started, last seen).",
        discussion: """
            Each `actas serve` records itself as it starts, refreshes its row every \
            \(Int(InstanceRecord.heartbeat)) seconds and removes it when it stops cleanly. Commands \
            that change who may do what tell every instance listed here and wait for it to confirm; \
            a row not refreshed for over \(Int(InstanceRecord.staleAfter)) seconds is marked stale \
            (the instance was killed, hangs, or cannot write to the store) and is still asked: \
            only an admin address that refuses connections counts as not running.
            """
    )

    @OptionGroup var options: ConfigOption
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        let config = try options.load()
        try await StoreAccess.withDirectory(config) { directory in
            let instances = try await directory.store.instances()
            let now = Date()
            if json {
                printJSON(instances.map { instance -> [String: Any] in
                    ["id": instance.id, "admin": instance.adminAddress, "started_at": rfc3339(instance.startedAt),
                     "last_seen": rfc3339(instance.lastSeen), "stale": instance.isStale(now: now)]
                })
                return
            }
            var rows = [["ID", "ADMIN", "STARTED", "LAST SEEN"]]
            for instance in instances {
                let seen = Int(now.timeIntervalSince(instance.lastSeen).rounded())
                rows.append([instance.id, instance.adminAddress.isEmpty ? "-" : instance.adminAddress,
                             shortDate(instance.startedAt),
                             "\(max(seen, 0))s ago" + (instance.isStale(now: now) ? " (stale)" : "")])
            }
            printTable(rows)
        }
    }
}
