import ActAsCore
import ActAsHTTP
import ActAsPages
import NIOCore

/// One request and its answer, on one client connection: created whole when the request's
/// head arrives (or the codec refuses it), so nothing of one exchange can leak into the next.
/// The connection-level state (parser, buffers, timers, the upstream connection, the
/// identity memo) stays on the handler.
struct Exchange {
    let requestID: RequestID
    /// When the head was complete: the request log's duration starts here.
    let start: NIODeadline
    var method = HTTPMethod.get
    var wantsHTML = false
    /// The browser will show the answer as a document (any method; see isDocumentNavigation).
    var isDocumentNavigation = false
    var clientKeepAlive = true
    var clientIsHTTP10 = false
    var isUpgrade = false
    /// The client's `Sec-WebSocket-Key`: an upstream 101 must answer it.
    var webSocketKey: String?

    // The request on its way up.
    var requestBody = DownstreamHandler.RequestBody.none
    var requestHadBody = false
    var requestSent = false
    var upstreamRequestHead = ByteBuffer()
    /// Where the forwarded `X-Forwarded-Host` value lies in `upstreamRequestHead`.
    var upstreamHostRange = 0..<0
    /// Tries of an upstream connection (a reused one the upstream had just closed is retried once).
    var attempts = 0
    var bodyClock = BodyProgressClock()

    // The answer on its way down.
    var responseStarted = false
    var responseStatus = 0
    var closeAfterResponse = false
    var upstreamReusable = true
    /// Some response bytes already went to the client (it cannot be replaced by an error any more).
    var responseBytesSent = false
    /// The head of a rewritten navigation, held until the rewriter knows the page can carry
    /// the banner (then it leaves first), so that one that cannot is refused instead.
    var heldResponseHead: ByteBuffer?
    /// The rewriter refused or cut the response: the rest of the upstream's body is not read.
    var responseReplaced = false

    // Impersonation.
    /// The impersonation session this exchange (or tunnel) was forwarded under: cut when that
    /// session ends (SPEC §7).
    var impersonationID: String?
    /// Where `Set-Cookie` of the response goes while impersonating, and the path it was
    /// requested for.
    var cookieJar: CookieJar?
    var cookiePath = "/"
    /// The sign-in session (id hash): its browser is due the restoration of its own app
    /// cookies once an impersonation of it ended (CookieJars).
    var signIn: String?
    /// While impersonating a page load: what the banner shows, should the answer be HTML.
    var banner: BannerInfo?
    /// While someone acts as the person loading a page: the notice it shows (SPEC §10.5), the
    /// markup ready, should the answer be HTML.
    var targetNotice: [UInt8]?

    /// The request log record, when it will be written (SPEC §8).
    var log: ExchangeLog?

    init(requestID: RequestID, start: NIODeadline) {
        self.requestID = requestID
        self.start = start
    }
}
