import ActAsAudit
import Synchronization

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

/// The request log: the audit writer as an event sink, with its health for the request path
/// (impersonated requests are refused with 503 while the log cannot be written) and failures
/// to queue reported rather than dropped silently.
public final class AuditLog: AuditSink {
    public let writer: AuditWriter
    private let health: Health
    private let report: @Sendable (String) -> Void

    final class Health: Sendable {
        private let ok = Atomic<Bool>(true)
        var isOK: Bool { ok.load(ordering: .relaxed) }
        func set(_ value: Bool) { ok.store(value, ordering: .relaxed) }
    }

    /// Others who want each durable session line as it is written (the live watch).
    private let sessionLineObservers: SessionLineObservers

    final class SessionLineObservers: Sendable {
        private let observers = Mutex<[@Sendable ([AuditSessionLine]) -> Void]>([])
        func add(_ observer: @escaping @Sendable ([AuditSessionLine]) -> Void) { observers.withLock { $0.append(observer) } }
        func deliver(_ lines: [AuditSessionLine]) {
            for observer in observers.withLock({ $0 }) { observer(lines) }
        }
    }

    public init(configuration: AuditWriterConfiguration, report: @escaping @Sendable (String) -> Void) throws(AuditError) {
        let health = Health()
        self.health = health
        self.report = report
        let observers = SessionLineObservers()
        self.sessionLineObservers = observers
        var configuration = configuration
        if let copy = configuration.onSessionLines {
            configuration.onSessionLines = { lines in
                copy(lines)
                observers.deliver(lines)
            }
        }
        writer = try AuditWriter(configuration: configuration) { error in
            switch error.kind {
            case .recovered: health.set(true)
            case .recovery: break  // a damaged file was set aside; writing goes on
            default: health.set(false)
            }
            report("\(error)")
        }
    }

    /// `observer` gets every durable line of an impersonation session, on the log's sync
    /// thread (it must not block). Only when the log copies session lines (a store is attached).
    public func observeSessionLines(_ observer: @escaping @Sendable ([AuditSessionLine]) -> Void) {
        sessionLineObservers.add(observer)
    }

    /// False from a write failure until writing works again.
    public var isHealthy: Bool { health.isOK }

    /// `body_capture_bytes`: how much of an impersonated request's body is kept for the log.
    public var captureBytes: Int { writer.configuration.redactor.bodyCaptureBytes }

    public func record(_ record: AuditRecord) {
        if !writer.append(record) {
            report("queue full: a \(record.type.rawValue) record could not be queued")
        }
    }

    /// Queues the records one event loop encoded in a round; reports them if the full queue
    /// refused them.
    public func record(encoded records: EncodedAuditRecords) {
        if !writer.append(encoded: records) {
            report("queue full: \(records.count) request records could not be queued")
        }
    }

    /// Queues a record that must be on disk before the caller goes on; `done` runs on the
    /// writer thread (hand off from there). Returns false when it could not even be queued.
    public func recordDurably(_ record: AuditRecord, done: @escaping @Sendable (Bool) -> Void) -> Bool {
        let queued = writer.append(record, durable: true) { result in
            if case .failure = result { done(false) } else { done(true) }
        }
        if !queued { report("queue full: an impersonated request was refused rather than logged late") }
        return queued
    }
}
