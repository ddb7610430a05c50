import ActAsAudit
import ActAsConfig

/// The request log's redaction as `[audit]` sets it: one place, for start and SIGHUP alike.
public enum AuditSettings {
    public static func redactor(_ audit: ActAsConfig.Audit) -> Redactor {
        Redactor(redactKeys: audit.redactKeys, redactHeaders: audit.redactHeaders, bodyCaptureBytes: audit.bodyCaptureBytes)
    }
}
