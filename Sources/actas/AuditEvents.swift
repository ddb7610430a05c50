import ActAsConfig
import ActAsConsole
import Foundation

/// Interim: security events go to stderr until the audit writer is wired in (issue 6).
final class AuditEvents: SecurityEventRecorder {
    static func open(_ config: ActAsConfig) throws -> AuditEvents { AuditEvents() }

    func record(_ event: SecurityEvent) {
        Diagnostics.info("event: \(event.type) user=\(event.user ?? "-") ip=\(event.clientIP ?? "-") reason=\(event.reason ?? "-")")
    }

    func close() {}
}
