import ActAsConfig
import ActAsHTTP
import NIOCore

/// What the request path needs from the configuration, precomputed once per (re)load so the
/// data path never looks at strings or does arithmetic on durations. Immutable: a reload
/// builds a new one and each event loop picks it up for new requests.
public struct ProxySettings: Sendable {
    public var limits: HTTPLimits
    public var headerTimeout: TimeAmount
    public var idleTimeout: TimeAmount
    public var responseTimeout: TimeAmount
    public var connectTimeout: TimeAmount
    public var drainTimeout: TimeAmount
    public var maxUpstreamConnections: Int
    public var upstreamHost: String
    public var upstreamPort: Int
    /// `Host` to send when an HTTP/1.0 client sent none.
    public var upstreamAuthority: [UInt8]
    public var trustedProxies: [CIDR]
    /// The full `Strict-Transport-Security: …\r\n` line, or empty when off.
    public var hstsLine: [UInt8]
    /// Request headers a client may never set (lowercase, `_` read as `-`): the proxy owns them.
    public var strippedRequestHeaders: [[UInt8]]
    /// Prefixes of such headers (lowercase).
    public var strippedRequestHeaderPrefixes: [[UInt8]]

    public init(config: ActAsConfig) {
        limits = HTTPLimits(
            maxRequestLine: config.limits.maxRequestLine,
            maxHeaderBytes: config.limits.maxHeaderBytes,
            maxHeaders: config.limits.maxHeaders,
            maxBody: config.limits.maxBody
        )
        headerTimeout = .milliseconds(config.limits.headerTimeout.milliseconds)
        idleTimeout = .milliseconds(config.limits.idleTimeout.milliseconds)
        drainTimeout = .milliseconds(config.limits.drainTimeout.milliseconds)
        responseTimeout = .milliseconds(config.upstream.responseTimeout.milliseconds)
        connectTimeout = .milliseconds(config.upstream.connectTimeout.milliseconds)
        maxUpstreamConnections = config.upstream.maxConnections
        upstreamHost = config.upstream.host
        upstreamPort = config.upstream.port
        upstreamAuthority = Array(config.upstream.authority.utf8)
        trustedProxies = config.listen.trustedProxies
        hstsLine = config.listen.hsts.map { Array("Strict-Transport-Security: \($0)\r\n".utf8) } ?? []
        strippedRequestHeaders = Self.proxyOwnedHeaders.map { Array($0.utf8) }
        strippedRequestHeaderPrefixes = []
    }

    /// SPEC §5: set by the proxy, never taken from a client. (`Forwarded` and `X-Real-IP`
    /// carry the same claims in other spellings, so they go too.)
    static let proxyOwnedHeaders = [
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
        "x-request-id", "forwarded", "x-real-ip",
    ]
}
