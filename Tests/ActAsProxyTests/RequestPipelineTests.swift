import ActAsConfig
import ActAsCore
import ActAsHTTP
import Foundation
import NIOCore
import Testing
@testable import ActAsProxy

/// A request head parsed by the proxy's own codec, as the handler sees it.
func head(_ text: String) throws -> RequestHead {
    var parser = HeadParser(kind: .request, limits: HTTPLimits())
    var buffer = ByteBuffer(string: text)
    let length = try #require(try parser.parse(buffer))
    return try parser.finishRequest(buffer.readSlice(length: length)!)
}

func settings(_ text: String = "") throws -> ProxySettings {
    guard case .success(let loaded) = ConfigLoader(path: "/nonexistent/proxy.conf", environment: [:]).load(text: text) else {
        throw ConfigTextError()
    }
    return ProxySettings(config: loaded.config)
}

struct ConfigTextError: Error {}

@Suite("Request pipeline: sanitize")
struct SanitizeStageTests {
    func sanitize(_ text: String, config: String = "") throws -> RequestPipeline.Step<RequestPipeline.Sanitized> {
        let head = try head(text)
        let credentials = RequestCredentials.scan(head.block)
        return RequestPipeline.sanitize(head, impersonateHeader: credentials.impersonateHeader, settings: try settings(config))
    }

    func answer(_ step: RequestPipeline.Step<RequestPipeline.Sanitized>) -> ProxyAnswer? {
        if case .answer(let answer) = step { return answer }
        return nil
    }

    func sanitized(_ step: RequestPipeline.Step<RequestPipeline.Sanitized>) -> RequestPipeline.Sanitized? {
        if case .proceed(let value) = step { return value }
        return nil
    }

    @Test func anOrdinaryRequestGoesOnAsWritten() throws {
        let result = try #require(sanitized(sanitize("GET /orders?id=1 HTTP/1.1\r\nHost: app.example\r\n\r\n")))
        #expect(result == RequestPipeline.Sanitized())
    }

    @Test(arguments: ["CONNECT", "TRACE"])
    func connectAndTraceAreNotAllowed(method: String) throws {
        let target = method == "CONNECT" ? "app.example:443" : "/"
        let plain = try #require(answer(sanitize("\(method) \(target) HTTP/1.1\r\nHost: app.example\r\n\r\n")))
        #expect(plain.status == 405 && plain.code == "method_not_allowed" && !plain.close)
        #expect(plain.extraHeaders == "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n")
        // A body that will not be read: the connection cannot be reused.
        let withBody = try #require(answer(sanitize("\(method) \(target) HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\n\r\n")))
        #expect(withBody.status == 405 && withBody.close)
    }

    @Test func absoluteFormTakesItsAuthorityAsHost() throws {
        let result = try #require(sanitized(sanitize("GET HTTPS://App.Example/a?b=1 HTTP/1.1\r\nHost: other.example\r\n\r\n")))
        #expect(result.targetOverride == Array("/a?b=1".utf8))
        #expect(result.hostOverride == Array("app.example".utf8))  // canonical: lower case
        let query = try #require(sanitized(sanitize("GET http://app.example?x HTTP/1.1\r\nHost: app.example\r\n\r\n")))
        #expect(query.targetOverride == Array("/?x".utf8))
    }

    @Test(arguments: [
        ("GET ftp://app.example/ HTTP/1.1", "expected a path starting with /"),
        ("GET http://user@app.example/ HTTP/1.1", "bad authority"),
        ("GET http:///x HTTP/1.1", "bad authority"),
    ])
    func invalidTargetsAreRefusedAndClose(line: String, reason: String) throws {
        let refused = try #require(answer(sanitize("\(line)\r\nHost: app.example\r\n\r\n")))
        #expect(refused == .invalidTarget(reason))
        #expect(refused.status == 400 && refused.close)
    }

    @Test func optionsStarIsAnOriginRequest() throws {
        #expect(sanitized(try sanitize("OPTIONS * HTTP/1.1\r\nHost: app.example\r\n\r\n")) != nil)
    }

    @Test func publicHostsDecideWhichHostIsServed() throws {
        let config = "[listen]\npublic_hosts = [\"app.example\"]\n"
        #expect(answer(try sanitize("GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", config: config)) == .misdirected)
        #expect(answer(try sanitize("GET / HTTP/1.1\r\nHost: app..example\r\n\r\n", config: config)) == .invalidHost)
        #expect(sanitized(try sanitize("GET / HTTP/1.1\r\nHost: app.example\r\n\r\n", config: config)) != nil)
        // HTTP/1.0 without Host: the first public host.
        let old = try #require(sanitized(sanitize("GET / HTTP/1.0\r\n\r\n", config: config)))
        #expect(old.hostOverride == Array("app.example".utf8))
    }

    @Test(arguments: ["Impersonate-User: alice", "impersonate-group: admins", "IMPERSONATE-UID: 7"])
    func impersonateHeadersAreRefused(field: String) throws {
        #expect(answer(try sanitize("GET / HTTP/1.1\r\nHost: app.example\r\n\(field)\r\n\r\n")) == .impersonationHeader)
    }

    @Test func aWebSocketUpgradeCarriesItsKey() throws {
        let result = try #require(sanitized(sanitize(
            "GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: abc==\r\n\r\n")))
        #expect(result.isUpgrade && result.webSocketKey == "abc==")
        let h2c = try #require(sanitized(sanitize("GET / HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")))
        #expect(!h2c.isUpgrade && h2c.webSocketKey == nil)
    }
}

@Suite("Request pipeline: admission")
struct AdmissionStageTests {
    func admit(_ text: String, wantsHTML: Bool = false, storeWithinGrace: @escaping () -> Bool = { true }) throws -> RequestPipeline.Admission {
        let head = try head(text)
        let target = RequestTarget(head: head, override: nil)
        return RequestPipeline.admit(
            head, target: target, identity: nil, sanitized: RequestPipeline.Sanitized(), wantsHTML: wantsHTML,
            storeWithinGrace: storeWithinGrace(), settings: try settings())
    }

    @Test(arguments: ["/.actas/", "/.actas", "/.actas/login", "/.well-known/actas/jwks.json"])
    func consolePathsGoToTheConsole(path: String) throws {
        guard case .console = try admit("GET \(path) HTTP/1.1\r\nHost: app.example\r\n\r\n") else {
            Issue.record("not handed to the console")
            return
        }
    }

    @Test func anonymousBrowsersAreSentToSignInAndBack() throws {
        guard case .answer(let answer) = try admit("GET /orders?a=1&b=x%20y HTTP/1.1\r\nHost: app.example\r\n\r\n", wantsHTML: true) else {
            Issue.record("forwarded")
            return
        }
        #expect(answer.status == 302 && answer.code == "unauthenticated")
        #expect(answer.extraHeaders == "Location: /.actas/login?rd=/orders%3Fa%3D1%26b%3Dx%2520y\r\n")
    }

    @Test func anonymousProgramsGet401() throws {
        guard case .answer(let answer) = try admit("GET /api/orders HTTP/1.1\r\nHost: app.example\r\n\r\n") else {
            Issue.record("forwarded")
            return
        }
        #expect(answer == .unauthenticated)
        #expect(answer.extraHeaders == "WWW-Authenticate: Bearer realm=\"actas\"\r\n")
    }

    @Test func publicPathsAreForwardedWithoutSignInAndWithoutAskingTheStore() throws {
        var asked = false
        let admission = try admit("GET /static/app.css HTTP/1.1\r\nHost: app.example\r\n\r\n") {
            asked = true
            return false
        }
        guard case .forward = admission else {
            Issue.record("not forwarded")
            return
        }
        #expect(!asked)  // the store's grace concerns identified requests only
    }

    @Test func lookAlikesOfTheConsoleAreNotTheConsole() throws {
        guard case .answer(let answer) = try admit("GET /.actasx HTTP/1.1\r\nHost: app.example\r\n\r\n") else {
            Issue.record("handed over")
            return
        }
        #expect(answer == .unauthenticated)
    }
}

@Suite("Request pipeline: impersonation gate")
struct ImpersonationGateTests {
    func normalized(_ text: String) throws -> RequestPipeline.NormalizedPath {
        RequestPipeline.normalizedPath(RequestTarget(head: try head(text), override: nil))
    }

    @Test func theNormalisedPathIsCheckedAndForwarded() throws {
        #expect(try normalized("GET /a/../private/x?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
                == .path(Array("/private/x".utf8), targetOverride: Array("/private/x?q=1".utf8)))
        #expect(try normalized("GET /plain?q=1 HTTP/1.1\r\nHost: h\r\n\r\n") == .path(Array("/plain".utf8), targetOverride: nil))
    }

    @Test(arguments: ["/private%2fx", "/a%5cb", "/a%00", "/%252e%252e/"])
    func encodedSeparatorsAreRefused(path: String) throws {
        #expect(try normalized("GET \(path) HTTP/1.1\r\nHost: h\r\n\r\n") == .badEncoding(path))
    }

    func gate(_ method: String, _ path: String, mode: ImpersonationMode, extra: String = "", auditHealthy: Bool = true) throws
        -> RequestPipeline.GateDecision
    {
        let head = try head("\(method) \(path) HTTP/1.1\r\nHost: h\r\n\(extra)\r\n")
        return RequestPipeline.impersonationGate(
            path: Array(path.utf8), head: head, mode: mode, isUpgrade: false, auditHealthy: auditHealthy, settings: try settings())
    }

    @Test func hiddenPathsAreRefusedInEveryMode() throws {
        #expect(try gate("GET", "/private/x", mode: .readWrite) == .refuse(.hiddenPath))
        #expect(try gate("GET", "/account/security/keys", mode: .readOnly) == .refuse(.hiddenPath))
        #expect(try gate("GET", "/account/profile", mode: .readOnly) == .allow)
    }

    @Test func readOnlyRefusesUnsafeMethodsAndOverrides() throws {
        #expect(try gate("POST", "/orders", mode: .readOnly, extra: "Content-Length: 0\r\n") == .refuse(.readOnly))
        #expect(try gate("POST", "/orders", mode: .readWrite, extra: "Content-Length: 0\r\n") == .allow)
        #expect(try gate("GET", "/orders", mode: .readOnly, extra: "X-HTTP-Method-Override: DELETE\r\n") == .refuse(.readOnly))
        #expect(try gate("HEAD", "/orders", mode: .readOnly) == .allow)
    }

    @Test func nothingIsForwardedWhileTheLogCannotBeWritten() throws {
        #expect(try gate("GET", "/orders", mode: .readWrite, auditHealthy: false) == .auditUnavailable)
        #expect(ProxyAnswer.auditUnavailable(close: false).status == 503)
    }

    @Test func anEndedSessionIsAnnouncedOnceAsTheRequestExpects() throws {
        let session = ImpersonationSession(
            id: "imp_1", actorID: "u1", targetID: "u2", reason: "ticket", mode: .readOnly, startedAt: Date(timeIntervalSince1970: 0),
            expiresAt: Date(timeIntervalSince1970: 60), endReason: .consentRevoked, noticePending: true)
        let page = RequestPipeline.endNotice(session, head: try head("GET /x HTTP/1.1\r\nHost: h\r\nSec-Fetch-Mode: navigate\r\n\r\n"))
        #expect(page.answer.status == 303 && page.html == nil)
        #expect(page.answer.extraHeaders == "Location: /.actas/ended?id=imp_1\r\n")
        let fetch = RequestPipeline.endNotice(session, head: try head("POST /x HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nContent-Length: 0\r\n\r\n"))
        #expect(fetch.answer.status == 403 && fetch.html == false)
        #expect(fetch.answer.extraJSON == ",\"end_reason\":\"consent_revoked\"")
    }
}

@Suite("Proxy answers")
struct ProxyAnswerTests {
    static let catalogue: [ProxyAnswer] = [
        .methodNotAllowed("TRACE", close: false), .invalidTarget("x"), .invalidHost, .misdirected, .impersonationHeader,
        .invalidToken, .storeUnavailable, .signIn(returningTo: "/"), .unauthenticated, .webSocketCrossSite, .consoleBodyTooLarge,
        .refusal(.readOnly), .refusal(.hiddenPath), .refusal(.badPathEncoding), .auditUnavailable(close: false),
        .impersonationEndedPage(sessionID: "imp_1", reason: .expired), .impersonationEnded(.expired), .impersonationEndedBeforeForwarding,
        .upstreamUnreachable, .upstreamUnsafeResponse, .upstreamUnaskedSwitch, .upstreamBadWebSocketAccept, .upstreamClosedSilently,
        .upstreamClosedMidResponse, .upstreamTimeout, .headTimeout, .bodyTimeout,
        .malformedHead(HTTPParseError(status: 431, reason: "too many")), .malformedBody(HTTPParseError(status: 400, reason: "bad chunk")),
    ]

    @Test(arguments: catalogue)
    func everyAnswerHasAReasonPhraseACodeAndASentence(answer: ProxyAnswer) {
        #expect(ErrorResponse.reasonPhrase(answer.status) != "Error")
        #expect(!answer.code.isEmpty && answer.code == answer.code.lowercased())
        #expect(answer.message.hasSuffix(".") || answer.message.hasSuffix(")"))
        #expect(answer.extraHeaders.isEmpty || answer.extraHeaders.hasSuffix("\r\n"))
    }

    @Test func malformedHeadsCloseAndNameTheirCode() {
        let answer = ProxyAnswer.malformedHead(HTTPParseError(status: 431, reason: "too many"))
        #expect(answer.code == "headers_too_large" && answer.close)
        #expect(answer.message == "The request headers are too large or too many.")
    }
}
