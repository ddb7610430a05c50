import ActAsCore
import ActAsStore
import ArgumentParser
import Foundation

/// SPEC §10.1: a command that changes who may do what returns only once every running
/// instance sharing the store enforces the change. After the store write, every instance
/// recorded in the store is told through its admin listener and must confirm. Stale rows are
/// asked too: a live instance's heartbeat fails while the store is write-locked (a long
/// `users import`), and it still enforces the old state. Only a refused connection shows an
/// instance is not running (reported, no failure); any other failure is one stderr line and
/// exit 3, the change stays stored.
enum ChangeAcknowledgement {
    static func waitForInstances(_ store: any Store) async throws {
        let change: Int64
        let recorded: [InstanceRecord]
        do {
            change = try await store.latestChangeID()
            recorded = try await store.instances()
        } catch {
            Diagnostics.error("actas: the change is stored, but the running instances cannot be listed to confirm it: \(error)")
            throw ExitCode(3)
        }
        let now = Date()
        let outcomes = await InstanceNotifier.announce(change: change, to: recorded)
        var unconfirmed = 0
        for (instance, outcome) in outcomes {
            let name = "instance \(TerminalText.safe(instance.id)) (admin \(TerminalText.safe(instance.adminAddress)))"
            let seen = instance.isStale(now: now)
                ? " (last seen \(Int(now.timeIntervalSince(instance.lastSeen)))s ago)" : ""
            switch outcome {
            case .confirmed:
                break
            case .notRunning(let why):
                Diagnostics.warn("\(name)\(seen) is not running: \(why)")
            case .failed(let why):
                unconfirmed += 1
                Diagnostics.error("actas: \(name)\(seen) did not confirm change \(change): \(why)")
            }
        }
        if unconfirmed > 0 { throw ExitCode(3) }
    }
}
