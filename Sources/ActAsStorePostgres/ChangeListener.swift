import ActAsStore
import Foundation
import Logging
import PostgresNIO

/// One dedicated connection per instance that LISTENs on the change channel and rings the
/// change-feed reader for every notification. The notification carries only a change id: the
/// reader reads the rows itself, from its own position, so a notification lost while the
/// connection was down costs nothing — after every (re)connect the reader is rung once to
/// resynchronise from the changes table.
public struct ChangeListener: Sendable {
    let endpoint: PostgresEndpoint
    let applicationName: String
    let logger: Logger

    public init(store: PostgresStore, applicationName: String, logger: Logger) {
        self.endpoint = store.endpoint
        self.applicationName = applicationName
        self.logger = logger
    }

    /// Listens until cancelled; reconnects with backoff (0.1 s doubling to 5 s).
    public func run(ring: @escaping @Sendable () -> Void) async {
        var delay: Duration = .milliseconds(100)
        var connectionID = 0
        while !Task.isCancelled {
            connectionID += 1
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: endpoint.connectionConfiguration(applicationName: applicationName), id: connectionID, logger: logger)
                do {
                    try await withTaskCancellationHandler {
                        try await connection.listen(on: PostgresStore.channel) { notifications in
                            if connectionID > 1 { logger.info("store change listener connected again; resynchronising from the change feed") }
                            delay = .milliseconds(100)
                            // Changes committed while nobody listened are in the table: read them now.
                            ring()
                            for try await _ in notifications { ring() }
                        }
                    } onCancel: {
                        connection.close()
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
                if !Task.isCancelled { logger.warning("store change listener connection ended; reconnecting") }
            } catch {
                if Task.isCancelled { break }
                logger.warning("store change listener lost its connection (\(PostgresStore.reason(error))); reconnecting in \(delay)")
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }
}
