import ActAsConfig
import ActAsCore
import ActAsHTTP
import Foundation
import NIOCore

/// What the request path needs from the configuration, precomputed once per (re)load so the
/// data path never looks at strings or does arithmetic on durations. Immutable: a reload
/// builds a new one and each event loop picks it up for new requests. A class, so taking the
/// current settings per request is one reference count, not one per array field.
public final class ProxySettings: Sendable {
    public let limits: HTTPLimits
    public let headerTimeout: TimeAmount
    public let idleTimeout: TimeAmount
    /// `limits.h2_max_concurrent_streams`: SETTINGS_MAX_CONCURRENT_STREAMS of every h2 connection.
    public let h2MaxConcurrentStreams: Int
    /// `limits.body_timeout`: a request body that makes no progress this long gets 408.
    public let bodyTimeout: TimeAmount
    public let responseTimeout: TimeAmount
    public let connectTimeout: TimeAmount
    public let drainTimeout: TimeAmount
    public let maxUpstreamConnections: Int
    public let upstreamHost: String
    public let upstreamPort: Int
    /// `Host` to send when an HTTP/1.0 client sent none.
    public let upstreamAuthority: [UInt8]
    public let trustedProxies: [CIDR]
    /// The full `Strict-Transport-Security: …\r\n` line, or empty when off.
    public let hstsLine: [UInt8]
    /// Request headers a client may never set (lowercase, `_` read as `-`): the proxy owns them.
    public let strippedRequestHeaders: [[UInt8]]
    /// Prefixes of such headers (lowercase).
    public let strippedRequestHeaderPrefixes: [[UInt8]]
    /// First bytes (lowercase, and upper case) of every stripped name or prefix: one table
    /// lookup rejects most ordinary headers.
    public let strippedFirstBytes: [Bool]
    /// Identity header names as configured (`[headers]`), written before `: `.
    public let userHeader: [UInt8]
    public let emailHeader: [UInt8]
    public let groupsHeader: [UInt8]
    public let assertionHeader: [UInt8]
    /// `assertion_issuer`, or nil for "the public origin of the request".
    public let assertionIssuer: String?
    public let assertionAudience: String
    public let passwordSignIn: Bool
    public let publicPaths: [PathPattern]
    /// `impersonation.hidden_paths`, refused while impersonating.
    public let hiddenPaths: HiddenPaths
    /// For the banner: when to offer Extend, and the longest a session may run.
    public let warnBeforeEnd: TimeInterval
    /// `audit.log_requests = "all"`.
    public let logAllRequests: Bool
    public let maxImpersonation: TimeInterval
    /// `limits.max_rewritten_page`: the most a page getting the banner may inflate to.
    public let maxRewrittenPage: Int
    /// The upstream's own address, recognised in `Location`-like response headers (SPEC §9).
    public let upstreamAddress: UpstreamAddress
    /// `listen.public_hosts`: which Host is served, and its canonical spelling.
    public let hostPolicy: HostPolicy

    public init(config: ActAsConfig) {
        limits = HTTPLimits(
            maxRequestLine: config.limits.maxRequestLine,
            maxHeaderBytes: config.limits.maxHeaderBytes,
            maxHeaders: config.limits.maxHeaders,
            maxBody: config.limits.maxBody
        )
        headerTimeout = .milliseconds(config.limits.headerTimeout.milliseconds)
        idleTimeout = .milliseconds(config.limits.idleTimeout.milliseconds)
        h2MaxConcurrentStreams = config.limits.h2MaxConcurrentStreams
        bodyTimeout = .milliseconds(config.limits.bodyTimeout.milliseconds)
        drainTimeout = .milliseconds(config.limits.drainTimeout.milliseconds)
        responseTimeout = .milliseconds(config.upstream.responseTimeout.milliseconds)
        connectTimeout = .milliseconds(config.upstream.connectTimeout.milliseconds)
        maxUpstreamConnections = config.upstream.maxConnections
        upstreamHost = config.upstream.host
        upstreamPort = config.upstream.port
        upstreamAuthority = Array(config.upstream.authority.utf8)
        trustedProxies = config.listen.trustedProxies
        hstsLine = config.listen.hsts.map { Array("Strict-Transport-Security: \($0)\r\n".utf8) } ?? []
        let headers = config.headers
        let configured = [headers.user, headers.email, headers.groups, headers.assertion].map(Self.normalisedName)
        var stripped = Self.proxyOwnedHeaders
        for name in configured where !stripped.contains(name) { stripped.append(name) }
        strippedRequestHeaders = stripped.map { Array($0.utf8) }
        strippedRequestHeaderPrefixes = Self.proxyOwnedPrefixes.map { Array($0.utf8) }
        var first = [Bool](repeating: false, count: 256)
        for name in strippedRequestHeaders + strippedRequestHeaderPrefixes {
            guard let byte = name.first else { continue }
            first[Int(byte)] = true
            if byte >= 0x61, byte <= 0x7A { first[Int(byte - 0x20)] = true }
            if byte == UInt8(ascii: "-") { first[Int(UInt8(ascii: "_"))] = true }
        }
        strippedFirstBytes = first
        userHeader = Array(headers.user.utf8)
        emailHeader = Array(headers.email.utf8)
        groupsHeader = Array(headers.groups.utf8)
        assertionHeader = Array(headers.assertion.utf8)
        assertionIssuer = headers.assertionIssuer.isEmpty ? nil : headers.assertionIssuer
        assertionAudience = headers.assertionAudience.isEmpty ? config.upstream.url : headers.assertionAudience
        passwordSignIn = config.auth.passwordEnabled
        publicPaths = config.auth.publicPaths.map { PathPattern($0) }
        hiddenPaths = HiddenPaths(config.impersonation.hiddenPaths, caseSensitive: config.impersonation.pathsCaseSensitive)
        warnBeforeEnd = config.impersonation.warnBeforeEnd.seconds
        logAllRequests = config.audit.logAllRequests
        maxImpersonation = config.impersonation.maxDuration.seconds
        maxRewrittenPage = Int(clamping: config.limits.maxRewrittenPage)
        upstreamAddress = UpstreamAddress(host: config.upstream.host, port: config.upstream.port)
        hostPolicy = HostPolicy(publicHosts: config.listen.publicHosts, listenerPort: config.listen.https.port)
    }

    /// Lower case, `_` as `-`: how header names are compared for anti-spoofing.
    static func normalisedName(_ name: String) -> String {
        name.lowercased().replacingOccurrences(of: "_", with: "-")
    }

    /// SPEC §5: set by the proxy, never taken from a client. (`Forwarded` and `X-Real-IP`
    /// carry the same claims in other spellings, so they go too.) The configured identity
    /// header names are added to these.
    static let proxyOwnedHeaders = [
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
        "x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-actas-jwt-assertion",
        "x-request-id", "forwarded", "x-real-ip",
    ]

    /// Whole families a client may not send: every `X-Forwarded-*` claim is the proxy's to
    /// make, `x-impersonat…` covers every impersonation header (SPEC §5), `x-actas-` is ours.
    static let proxyOwnedPrefixes = ["x-forwarded-", "x-impersonat", "x-actas-"]
}
