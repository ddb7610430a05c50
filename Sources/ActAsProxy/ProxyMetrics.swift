import Prometheus

/// Prometheus metrics for `/metrics` on the admin listener. Counters and gauges are atomics;
/// the latency histogram is the only lock on the request path.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let requestsByClass: [Counter]
    let inFlight: Gauge
    let latency: DurationHistogram
    let upstreamConnections: Gauge
    let tlsHandshakeFailures: Counter
    let upstreamErrors: Counter
    let rejectedRequests: Counter
    let openConnections: Gauge
    let refusedConnections: Counter
    let tlsHandshakeTimeouts: Counter

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "actas", metricName: metric, unitName: unit, helpText: help)
        }
        let requests = name("requests", "total", "Requests answered, by status class.")
        requestsByClass = (1...5).map { registry.makeCounter(descriptor: requests, labels: [("status_class", "\($0)xx")]) }
        inFlight = registry.makeGauge(descriptor: name("requests_in_flight", "", "Requests being processed."))
        latency = registry.makeDurationHistogram(
            descriptor: name("request_duration", "seconds", "Time from a complete request head to the end of the response head and body."),
            buckets: [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                      .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                      .seconds(2.5), .seconds(5), .seconds(10)])
        upstreamConnections = registry.makeGauge(descriptor: name("upstream_connections", "", "Open or connecting upstream connections (pool size, all event loops)."))
        tlsHandshakeFailures = registry.makeCounter(descriptor: name("tls_handshake_failures", "total", "TLS handshakes that failed."))
        upstreamErrors = registry.makeCounter(descriptor: name("upstream_errors", "total", "Upstream connect failures, timeouts and broken responses."))
        rejectedRequests = registry.makeCounter(descriptor: name("rejected_requests", "total", "Requests refused by the HTTP codec before forwarding."))
        openConnections = registry.makeGauge(descriptor: name("client_connections", "", "Open client connections."))
        refusedConnections = registry.makeCounter(descriptor: name("refused_connections", "total", "Client connections closed at accept: limits.max_connections (or the file descriptors) reached."))
        tlsHandshakeTimeouts = registry.makeCounter(descriptor: name("tls_handshake_timeouts", "total", "Client connections closed because the TLS handshake did not finish within limits.header_timeout."))
    }

    @inline(__always)
    func recordResponse(status: Int, nanoseconds: Int64) {
        let index = min(max(status / 100, 1), 5) - 1
        requestsByClass[index].increment()
        latency.recordNanoseconds(nanoseconds)
    }

    public func render() -> String { registry.emitToString() }
}
