import ActAsCore
import ActAsStore
import ArgumentParser
import Foundation

/// SPEC §10.1: a command that changes who may do what returns only once every running
/// instance sharing the store enforces the change. After the store write, each instance
/// recorded in the store is told through its admin listener and must confirm; one that
/// cannot is reported on stderr (one line each) and the command exits 3, the change stays
/// stored.
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
        let stale = recorded.filter { $0.isStale(now: now) }
        for instance in stale {
            Diagnostics.warn(
                "instance \(TerminalText.safe(instance.id)) (admin \(TerminalText.safe(instance.adminAddress))) was last seen "
                    + "\(Int(now.timeIntervalSince(instance.lastSeen)))s ago (over \(Int(InstanceRecord.staleAfter))s): "
                    + "taken as not running, not asked")
        }
        let running = recorded.filter { !$0.isStale(now: now) }
        let outcomes = await InstanceNotifier.announce(change: change, to: running)
        var unconfirmed = 0
        for (instance, outcome) in outcomes {
            if case .failed(let why) = outcome {
                unconfirmed += 1
                Diagnostics.error(
                    "actas: instance \(TerminalText.safe(instance.id)) (admin \(TerminalText.safe(instance.adminAddress))) did not confirm change \(change): \(why)")
            }
        }
        if unconfirmed > 0 { throw ExitCode(3) }
    }
}
