import ActAsProxy
import ActAsStore
import Foundation
import Logging
import ServiceLifecycle

/// This process's row in the store's `instances` table (SPEC §10.1): written at start, so
/// commands that change who may do what call this instance's `POST /sync` and wait for it;
/// refreshed every `InstanceRecord.heartbeat`; removed on a clean stop.
struct InstanceRegistration: Service {
    let store: any Store
    let record: InstanceRecord
    let sync: StateSync
    let logger: Logger

    /// Registers, then applies whatever changed since the snapshot: a command that wrote
    /// before this row existed did not wait for this instance.
    static func register(store: any Store, server: ProxyServer, sync: StateSync, id: String, logger: Logger) async throws -> InstanceRegistration {
        let now = Date()
        let admin = server.adminAddress.flatMap { address -> String? in
            guard let ip = address.ipAddress, let port = address.port else { return nil }
            return InstanceRecord.address(host: ip, port: port)
        } ?? ""
        let record = InstanceRecord(id: id, adminAddress: admin, startedAt: now, lastSeen: now)
        server.serveSync(sync, instanceID: id)
        try await store.registerInstance(record)
        try await sync.poll()
        return InstanceRegistration(store: store, record: record, sync: sync, logger: logger)
    }

    func run() async throws {
        var failing = false
        var others = await instancesSeen(before: nil)
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            // A stop request ends the wait at once: the row goes before the drain starts.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(InstanceRecord.heartbeat)) }
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            do {
                let now = Date()
                if try await !store.touchInstance(id: record.id, startedAt: record.startedAt, at: now) {
                    // Removed by someone (or another process with the same id stopped): back in.
                    try await store.registerInstance(InstanceRecord(id: record.id, adminAddress: record.adminAddress,
                                                                    startedAt: record.startedAt, lastSeen: now))
                }
                try await store.forgetInstances(lastSeenBefore: now.addingTimeInterval(-InstanceRecord.forgetAfter))
                others = await instancesSeen(before: others)
                if failing {
                    logger.info("instance heartbeat recorded again")
                    failing = false
                }
            } catch {
                if !failing { logger.error("cannot record this instance's heartbeat in the store: \(error)") }
                failing = true
            }
        }
        await deregister()
    }

    /// Logs the other instances sharing the store as they appear and go (`actas instances` lists
    /// them). Returns what it saw, or `before` when the store cannot say.
    func instancesSeen(before: [String: InstanceRecord]?) async -> [String: InstanceRecord]? {
        guard let rows = try? await store.instances() else { return before }
        var now: [String: InstanceRecord] = [:]
        for row in rows where row.id != record.id { now[row.id] = row }
        for (id, row) in now.sorted(by: { $0.key < $1.key }) where before?[id]?.startedAt != row.startedAt {
            logger.info("instance \(id) shares the store (admin \(row.adminAddress.isEmpty ? "none" : row.adminAddress))",
                        metadata: ["instance_seen": "\(id)"])
        }
        for id in (before ?? [:]).keys.sorted() where now[id] == nil {
            logger.info("instance \(id) stopped or was forgotten", metadata: ["instance_gone": "\(id)"])
        }
        return now
    }

    /// A stopped instance is not waited for: gone from the list at once.
    func deregister() async {
        do {
            try await store.removeInstance(id: record.id, startedAt: record.startedAt)
        } catch {
            logger.error("cannot remove this instance from the store: \(error)")
        }
    }
}
