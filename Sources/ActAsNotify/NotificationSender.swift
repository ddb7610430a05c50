import ActAsConfig
import ActAsStore
import Foundation
import Logging
import Prometheus

/// Delivers the store's outbox to the webhook, off the request path (SPEC §10.5): claims
/// the oldest due notification (in order per session), posts it, and records the outcome;
/// failures are retried with backoff for `retry_for`. Claims are leases held by this
/// instance, so with several instances each notification is sent by one of them, and a
/// `kill -9` loses nothing (the next start gives back this instance's leases).
public final class NotificationSender: Sendable {
    public let settings: ActAsConfig.Notify
    let store: any Store
    let owner: String
    let origin: String
    let client: WebhookClient?
    let schedule: RetrySchedule
    let metrics: NotifyMetrics
    let logger: Logger
    /// How long a claim lasts: longer than one attempt can take.
    static let lease: TimeInterval = 60

    public init(settings: ActAsConfig.Notify, store: any Store, owner: String, origin: String,
                registry: PrometheusCollectorRegistry, logger: Logger) {
        self.settings = settings
        self.store = store
        self.owner = owner
        self.origin = origin
        self.client = settings.enabled ? WebhookClient(url: settings.webhookURL, secret: settings.secret) : nil
        self.schedule = RetrySchedule(retryFor: Double(settings.retryFor.milliseconds) / 1000)
        self.metrics = NotifyMetrics(registry: registry)
        self.logger = logger
    }

    /// The body for `settings.format`.
    public static func body(_ payload: NotificationPayload, format: ActAsConfig.Notify.Format) -> [UInt8] {
        format == .slack ? payload.slackJSON() : payload.json()
    }

    /// Until cancelled. Polls while idle; an error from the store is retried after a pause.
    /// Shuts the webhook client down when it ends.
    public func run(poll: Duration = .milliseconds(200)) async {
        try? await store.releaseNotifications(owner: owner)
        var lastHousekeeping = ContinuousClock.now - .seconds(60)
        while !Task.isCancelled {
            var worked = false
            do {
                worked = try await deliverOne()
            } catch {
                logger.warning("notify: the outbox cannot be read: \(error)")
            }
            if ContinuousClock.now - lastHousekeeping >= .seconds(1) {
                lastHousekeeping = ContinuousClock.now
                await housekeeping()
            }
            if !worked { try? await Task.sleep(for: poll) }
        }
        await client?.shutdown()
    }

    /// Claims and handles one notification; false when none was due.
    @discardableResult
    public func deliverOne(now: Date = Date()) async throws -> Bool {
        guard let notification = try await store.claimNotification(owner: owner, now: now, lease: Self.lease) else { return false }
        guard let client, settings.events.contains(notification.type) else {
            try await store.finishNotification(seq: notification.seq, owner: owner, outcome: .skipped, now: now)
            return true
        }
        let payload = NotificationPayload(notification, origin: origin)
        let outcome = await client.post(eventID: notification.id, body: Self.body(payload, format: settings.format))
        let finished = Date()
        if outcome.isSuccess {
            try await store.finishNotification(seq: notification.seq, owner: owner, outcome: .delivered, now: finished)
            return true
        }
        metrics.failed.increment()
        let why: String
        switch outcome {
        case .answered(let status): why = "status \(status)"
        case .failed(let error): why = error
        }
        if let next = schedule.nextAttempt(createdAt: notification.createdAt, attempts: notification.attempts, now: finished) {
            logger.warning("notify: \(notification.id) (\(notification.type)) attempt \(notification.attempts) failed: \(why); next at \(next)")
            try await store.finishNotification(seq: notification.seq, owner: owner, outcome: .retry(at: next), now: finished)
        } else {
            logger.error("notify: \(notification.id) (\(notification.type)) given up after \(notification.attempts) attempts: \(why)")
            try await store.finishNotification(seq: notification.seq, owner: owner, outcome: .gaveUp, now: finished)
        }
        return true
    }

    func housekeeping(now: Date = Date()) async {
        do {
            let stats = try await store.notificationStats()
            metrics.pending.set(Double(stats.pending))
            metrics.oldestPendingSeconds.set(stats.oldestPending.map { max(0, now.timeIntervalSince($0)) } ?? 0)
            try await store.pruneNotifications(doneBefore: now.addingTimeInterval(-7 * 86400))
        } catch {
            logger.warning("notify: cannot read the outbox's state: \(error)")
        }
    }
}

/// `actas_notify_pending`, `actas_notify_failed_total`, `actas_notify_oldest_pending_seconds`.
struct NotifyMetrics: Sendable {
    let pending: Gauge
    let failed: Counter
    let oldestPendingSeconds: Gauge

    init(registry: PrometheusCollectorRegistry) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "actas", subsystem: "notify", metricName: metric, unitName: unit, helpText: help)
        }
        pending = registry.makeGauge(descriptor: name("pending", "", "Notifications in the outbox not yet delivered (all instances)."))
        failed = registry.makeCounter(descriptor: name("failed", "total", "Failed webhook delivery attempts by this instance."))
        oldestPendingSeconds = registry.makeGauge(descriptor: name("oldest_pending", "seconds", "Age of the oldest undelivered notification."))
    }
}
