import ActAsAudit
import ActAsConfig
import ActAsConsole
import ActAsSessions
import ActAsStore
import ArgumentParser
import Foundation
import Logging

/// The request log (`[audit]`): one writer thread, records redacted per the configuration.
enum AuditEvents {
    static func open(_ config: ActAsConfig, instance: String, copier: SessionAuditCopier?, checkpoints: AuditCheckpointSettings? = nil, logger: Logger) throws -> AuditLog {
        let redactor = AuditSettings.redactor(config.audit)  // SIGHUP builds it the same way
        let destination: AuditDestination = config.audit.file.map { .file($0) } ?? .standardOutput
        if let path = config.audit.file {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        do {
            var configuration = AuditWriterConfiguration(destination: destination, redactor: redactor, maxFileSize: config.audit.maxFileSize)
            configuration.checkpoints = checkpoints
            configuration.instance = instance
            if let copier {
                configuration.onSessionLines = { lines in copier.yield(lines) }
            }
            return try AuditLog(configuration: configuration, report: { message in logger.error("audit log: \(message)") })
        } catch {
            logger.error("audit.file: cannot open the request log: \(error)")
            throw ExitCode(1)
        }
    }
}

/// Copies request-log lines of impersonation sessions into the store, off the writer thread,
/// so the target and auditors can read them in the console: one transaction per
/// `AuditSessionLineBatches.gatherFor`, whatever the request rate.
final class SessionAuditCopier: Sendable {
    private let batches = AuditSessionLineBatches()
    /// This instance's `listen.instance_id`: the store keys session records by it too.
    private let instance: String
    private let logger: Logger

    init(instance: String, logger: Logger) {
        self.instance = instance
        self.logger = logger
    }

    func yield(_ lines: [AuditSessionLine]) {
        batches.offer(lines)
    }

    func finish() { batches.finish() }

    /// Runs until `finish()`; a failed write is retried a few times, then reported (the log
    /// file keeps the records either way).
    func run(into store: any Store) async {
        await batches.run { lines in
            let copies = lines.map {
                SessionAuditLine(sessionID: $0.sessionID, instance: instance, seq: Int64($0.seq),
                                 timestamp: Date(timeIntervalSince1970: Double($0.timestamp.millisecondsSinceEpoch) / 1000), line: $0.line)
            }
            var attempt = 0
            while true {
                do {
                    try await store.appendSessionAudit(copies)
                    break
                } catch {
                    attempt += 1
                    if attempt >= 5 {
                        logger.error("cannot copy \(copies.count) session audit records to the store: \(error)")
                        break
                    }
                    try? await Task.sleep(for: .milliseconds(200 * attempt))
                }
            }
        }
    }
}
