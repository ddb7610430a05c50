import ActAsAudit

/// Where security events go (the audit writer in the server). Events are never dropped
/// silently: a sink that cannot queue reports it through its own error channel.
public protocol AuditSink: Sendable {
    func record(_ record: AuditRecord)
}

/// Request context an event carries (who asked, from where).
public struct EventContext: Sendable {
    public var requestID: String?
    public var clientIP: String?

    public init(requestID: String? = nil, clientIP: String? = nil) {
        self.requestID = requestID
        self.clientIP = clientIP
    }

    /// Changes made with `actas` commands.
    public static let operatorCommand = EventContext()
}

/// The request log as an event sink: the audit writer, with failures to queue counted and
/// reported rather than dropped silently.
public final class AuditLog: AuditSink {
    public let writer: AuditWriter
    private let onDrop: @Sendable (AuditRecord) -> Void

    public init(writer: AuditWriter, onDrop: @escaping @Sendable (AuditRecord) -> Void) {
        self.writer = writer
        self.onDrop = onDrop
    }

    public func record(_ record: AuditRecord) {
        if !writer.append(record) { onDrop(record) }
    }
}
