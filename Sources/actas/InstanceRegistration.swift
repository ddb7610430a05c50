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

    /// A stopped instance is not waited for: gone from the list at once.
    func deregister() async {
        do {
            try await store.removeInstance(id: record.id, startedAt: record.startedAt)
        } catch {
            logger.error("cannot remove this instance from the store: \(error)")
        }
    }
}
