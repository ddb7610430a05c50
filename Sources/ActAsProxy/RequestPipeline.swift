import ActAsCore
import ActAsHTTP
import ActAsPages
import ActAsStore

/// The request's journey before anything is forwarded — sanitize → authenticate →
/// impersonation gate → rewrite — as functions from facts (the parsed head, its credentials,
/// who is asking, the settings) to a decision. No sockets, no clock, no state of their own:
/// the HTTP/1.1 handler (and later an HTTP/2 stream) runs the decision's effects.
enum RequestPipeline {
    /// A stage either lets the request go on with what it learned, or answers it.
    enum Step<Value> {
        case proceed(Value)
        case answer(ProxyAnswer)
    }

    // MARK: sanitize

    /// What sanitizing learned about where the request goes.
    struct Sanitized: Equatable {
        /// The origin-form target to forward instead of the one written (absolute-form).
        var targetOverride: [UInt8]? = nil
        /// The bytes to forward as Host and X-Forwarded-Host; nil: as the client wrote them.
        var hostOverride: [UInt8]? = nil
        var isUpgrade = false
        /// The client's `Sec-WebSocket-Key`: an upstream 101 must answer it.
        var webSocketKey: String? = nil
    }

    /// Method, target form, host (SPEC §3 `public_hosts`) and `Impersonate-*` headers, in
    /// that order. Every answer here is for a request that is never identified.
    static func sanitize(_ head: RequestHead, impersonateHeader: Bool, settings: ProxySettings) -> Step<Sanitized> {
        if head.method == .connect || head.method == .trace {
            return .answer(.methodNotAllowed(head.methodString, close: head.framing != .none))
        }
        var sanitized = Sanitized()
        switch classifyTarget(head) {
        case .origin:
            break
        case .absolute(let path, let authority):
            sanitized.targetOverride = path
            sanitized.hostOverride = authority
        case .invalid(let reason):
            return .answer(.invalidTarget(reason))
        }
        switch decideHost(head, authority: sanitized.hostOverride, settings: settings) {
        case .proceed(let host): sanitized.hostOverride = host
        case .answer(let answer): return .answer(answer)
        }
        sanitized.isUpgrade = isWebSocketUpgrade(head)
        sanitized.webSocketKey = sanitized.isUpgrade ? head.block.first("sec-websocket-key") : nil
        if impersonateHeader { return .answer(.impersonationHeader) }
        return .proceed(sanitized)
    }

    /// The host this request is for (absolute-form authority, else `Host`) must be
    /// well-formed and served. Proceeds with the bytes to forward (nil: as written).
    static func decideHost(_ head: RequestHead, authority: [UInt8]?, settings: ProxySettings) -> Step<[UInt8]?> {
        let policy = settings.hostPolicy
        let decision: HostPolicy.Decision
        if let authority {
            decision = authority.withUnsafeBytes { policy.decide($0) }
        } else if let index = head.hostIndex {
            decision = head.block.withUnsafeBytes { policy.decide(UnsafeRawBufferPointer(rebasing: $0[head.block.fields[index].valueRange])) }
        } else {
            // HTTP/1.0 without Host: the first public host, else the upstream's own authority.
            return .proceed(policy.publicHosts.first ?? settings.upstreamAuthority)
        }
        switch decision {
        case .serveAsWritten: return .proceed(authority)
        case .serve(let canonical): return .proceed(canonical)
        case .invalid: return .answer(.invalidHost)
        case .misdirected: return .answer(.misdirected)
        }
    }

    enum TargetForm: Equatable {
        case origin
        case absolute(path: [UInt8], authority: [UInt8])
        case invalid(String)
    }

    static func classifyTarget(_ head: RequestHead) -> TargetForm {
        head.block.withUnsafeBytes { raw -> TargetForm in
            let range = head.targetRange
            let first = raw[range.lowerBound]
            if first == UInt8(ascii: "/") { return .origin }
            if range.count == 1, first == UInt8(ascii: "*") {
                return head.method == .options ? .origin : .invalid("* is only for OPTIONS")
            }
            // absolute-form (RFC 9112 §3.2.2): take the authority as Host.
            let target = Array(raw[range])
            let lower = target.map { ($0 >= 0x41 && $0 <= 0x5A) ? $0 | 0x20 : $0 }
            let schemeLength: Int
            if lower.starts(with: Array("http://".utf8)) {
                schemeLength = 7
            } else if lower.starts(with: Array("https://".utf8)) {
                schemeLength = 8
            } else {
                return .invalid("expected a path starting with /")
            }
            let rest = target[schemeLength...]
            let pathStart = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? rest.endIndex
            let authority = Array(rest[rest.startIndex..<pathStart])
            guard !authority.isEmpty, !authority.contains(UInt8(ascii: "@")) else { return .invalid("bad authority") }
            var path = Array(rest[pathStart...])
            if path.first == UInt8(ascii: "?") { path.insert(UInt8(ascii: "/"), at: 0) }
            if path.isEmpty { path = [UInt8(ascii: "/")] }
            return .absolute(path: path, authority: authority)
        }
    }

    static func isWebSocketUpgrade(_ head: RequestHead) -> Bool {
        guard head.method == .get, head.connection.upgrade, let index = head.upgradeIndex, head.framing == .none else { return false }
        return head.block.value(head.block.fields[index]).lowercased().split(separator: ",").contains {
            $0.trimmingCharacters(in: .whitespaces).hasPrefix("websocket")
        }
    }

    // MARK: authenticate

    /// Who is asking, as resolved from the connection's memo or the live state.
    struct Identified {
        var memo: IdentityMemo
        var authentication: ConsoleRequest.Authentication
    }

    /// Where an identified (or anonymous) request goes next.
    enum Admission {
        /// `/.actas/…` and the JWKS: the console answers, never as the target.
        case console
        /// SPEC §7: the first request after an announced end is answered with the notice.
        case announceEnd(ImpersonationSession)
        /// On to the impersonation gate (while impersonating) and the rewrite.
        case forward
        /// SPEC §10.2: the in-memory state is trusted for `store.grace` after the store last
        /// answered; past that, identified requests get `503` (recorded without who asked).
        case storeUnavailable
        case answer(ProxyAnswer)
    }

    /// Store grace (SPEC §10.2), the console, an ended session's notice, sign-in (SPEC §4) and
    /// the WebSocket origin rule, in that order. `storeWithinGrace` is asked only of identified
    /// requests.
    static func admit(
        _ head: RequestHead, target: RequestTarget, identity: Identified?, sanitized: Sanitized, wantsHTML: Bool,
        storeWithinGrace: @autoclosure () -> Bool, settings: ProxySettings
    ) -> Admission {
        if identity != nil, !storeWithinGrace() { return .storeUnavailable }
        if target.isConsole { return .console }
        if let notice = identity?.memo.pendingNotice { return .announceEnd(notice) }
        if identity == nil, !target.isPublic(settings.publicPaths) {
            return .answer(wantsHTML ? .signIn(returningTo: target.originForm) : .unauthenticated)
        }
        if sanitized.isUpgrade, identity?.authentication == .session, !WebSocketOrigin.allowed(
            origin: head.block.first("origin"), secFetchSite: head.block.first("sec-fetch-site"),
            host: sanitized.hostOverride.map { String(decoding: $0, as: UTF8.self) } ?? head.host ?? "") {
            // SPEC §4: cookies ride along on any page's WebSocket; only this origin's may use them.
            return .answer(.webSocketCrossSite)
        }
        return .forward
    }

    /// SPEC §7: after an announced end, navigations go to the page that says why; everything
    /// else gets `403 impersonation_ended` in JSON.
    static func endNotice(_ session: ImpersonationSession, head: RequestHead) -> (answer: ProxyAnswer, html: Bool?) {
        let reason = session.endReason ?? .endedByOperator
        if isNavigation(head) { return (.impersonationEndedPage(sessionID: session.id, reason: reason), nil) }
        return (.impersonationEnded(reason), false)
    }

    // MARK: impersonation gate

    enum NormalizedPath: Equatable {
        /// Refused (`bad_path_encoding`); the path as written, for the record.
        case badEncoding(String)
        /// The path checked and forwarded; `targetOverride` when it differs from the one written.
        case path([UInt8], targetOverride: [UInt8]?)
    }

    /// SPEC §7: while impersonating, the normalised path is what is checked and forwarded.
    static func normalizedPath(_ target: RequestTarget) -> NormalizedPath {
        let path = target.withPath { Array($0) }
        switch path.withUnsafeBytes({ PathNormalizer.normalize($0, strict: true) }) {
        case .badEncoding: return .badEncoding(String(decoding: path, as: UTF8.self))
        case .normalized(let clean): return .path(clean, targetOverride: clean + target.querySuffix)
        case .unchanged: return .path(path, targetOverride: nil)
        }
    }

    enum GateDecision: Equatable {
        case allow
        case refuse(RequestRefusal)
        /// SPEC §8: impersonated requests are not forwarded while the log cannot be written.
        case auditUnavailable
    }

    /// SPEC §7–§8 for a request made while impersonating, on its normalised path: the request
    /// log must be writable, hidden paths are refused, and so (read-only) are unsafe methods,
    /// method overrides and upgrades.
    static func impersonationGate(
        path: [UInt8], head: RequestHead, mode: ImpersonationMode, isUpgrade: Bool, auditHealthy: Bool, settings: ProxySettings
    ) -> GateDecision {
        guard auditHealthy else { return .auditUnavailable }
        if path.withUnsafeBytes({ settings.hiddenPaths.isHidden($0) }) { return .refuse(.hiddenPath) }
        if mode == .readOnly, let refusal = ReadOnlyRules.refusal(method: head.methodString, headers: head.block.pairs, isUpgrade: isUpgrade) {
            return .refuse(refusal)
        }
        return .allow
    }

    // MARK: what kind of request

    /// Whether a browser renders the answer as a document: `Sec-Fetch-Mode: navigate` with any
    /// method (a form POST navigates too), or, from browsers that send no Sec-Fetch headers,
    /// an `Accept` with text/html. Wider than SPEC §7's navigation (GET only), which decides
    /// where an ended session's notice goes; this decides what must never show without banner.
    static func isDocumentNavigation(_ head: RequestHead, acceptsHTML: Bool) -> Bool {
        if let mode = head.block.first("sec-fetch-mode") { return mode.lowercased() == "navigate" }
        return acceptsHTML
    }

    /// A document load (the banner's audience): not a fragment fetched by a script. Browsers say
    /// so in `Sec-Fetch-Dest`; scripts of old often in `X-Requested-With`.
    static func isPageLoad(_ head: RequestHead) -> Bool {
        if let dest = head.block.first("sec-fetch-dest")?.lowercased(), dest != "document", dest != "iframe", dest != "frame" {
            return false
        }
        return head.block.first("x-requested-with") == nil
    }

    /// SPEC §7: a `GET` with `Sec-Fetch-Mode: navigate`, or without that header one whose
    /// `Accept` includes text/html.
    static func isNavigation(_ head: RequestHead) -> Bool {
        guard head.method == .get else { return false }
        if let mode = head.block.first("sec-fetch-mode") { return mode.lowercased() == "navigate" }
        return acceptsHTML(head.block)
    }

    /// Whether an `Accept` field mentions text/html: byte comparisons, no allocation.
    static func acceptsHTML(_ block: HeaderBlock) -> Bool {
        block.withUnsafeBytes { raw in
            for field in block.fields where field.nameLength == 6 && HeaderRewriter.equalsLowercase(raw, field.nameRange, accept) {
                let value = field.valueRange
                guard value.count >= textHTML.count else { continue }
                for start in value.lowerBound...(value.upperBound - textHTML.count)
                where HeaderRewriter.equalsLowercase(raw, start..<(start + textHTML.count), textHTML) {
                    return true
                }
            }
            return false
        }
    }

    static let accept: [UInt8] = Array("accept".utf8)
    static let textHTML: [UInt8] = Array("text/html".utf8)
}
