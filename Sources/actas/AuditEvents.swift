import ActAsAudit
import ActAsConfig
import ActAsConsole
import ArgumentParser
import Foundation

/// The request log (`[audit]`): one writer thread, records redacted per the configuration.
enum AuditEvents {
    static func open(_ config: ActAsConfig) throws -> AuditLog {
        let redactor = Redactor(redactKeys: config.audit.redactKeys, redactHeaders: config.audit.redactHeaders,
                                bodyCaptureBytes: config.audit.bodyCaptureBytes)
        let destination: AuditDestination = config.audit.file.map { .file($0) } ?? .standardOutput
        if let path = config.audit.file {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        let writer: AuditWriter
        do {
            writer = try AuditWriter(
                configuration: AuditWriterConfiguration(destination: destination, redactor: redactor, maxFileSize: config.audit.maxFileSize),
                onError: { error in Diagnostics.error("actas: audit log: \(error)") })
        } catch {
            Diagnostics.error("actas: audit.file: cannot open the request log: \(error)")
            throw ExitCode(1)
        }
        return AuditLog(writer: writer) { record in
            Diagnostics.error("actas: audit log queue full: a \(record.type.rawValue) record could not be queued")
        }
    }
}
