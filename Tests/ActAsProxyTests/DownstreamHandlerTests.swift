import ActAsAudit
import ActAsConfig
import ActAsCore
import ActAsPages
import ActAsSessions
import ActAsStore
import Foundation
import NIOCore
import NIOEmbedded
import Testing
@testable import ActAsProxy

/// A console that must never be reached by these requests.
final class NoConsole: ConsoleEndpoint {
    let impersonations: Impersonations
    let events: any AuditSink

    init(impersonations: Impersonations) {
        self.impersonations = impersonations
        self.events = impersonations.events
    }

    func handle(_ request: ConsoleRequest) async -> ConsoleResponse {
        Issue.record("handed to the console: \(request.path)")
        return ConsoleResponse(status: 500)
    }

    func apply(config: ActAsConfig, now: Date) -> Impersonations.PolicyReloadOutcome {
        impersonations.apply(policy: impersonations.policy, now: now)
    }
}

/// The HTTP/1.1 handler on an EmbeddedChannel with real settings, a real (empty) SQLite store
/// and a real request log in a temporary folder: what it writes back for answers the proxy
/// gives by itself, before any upstream is involved.
struct HandlerHarness {
    let channel: EmbeddedChannel
    let folder: String

    static func with(_ body: (HandlerHarness) throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("actas-handler-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        guard case .success(let loaded) = ConfigLoader(path: folder + "/proxy.conf", environment: [:]).load(text: "") else {
            throw ConfigTextError()
        }
        let store = try await SQLiteStore.open(path: folder + "/actas.db")
        try await store.migrate()
        let live = LiveState()
        let audit = try AuditLog(
            configuration: AuditWriterConfiguration(destination: .file(folder + "/audit.log"), redactor: Redactor(redactKeys: [], redactHeaders: [])),
            report: { _ in })
        let impersonations = Impersonations(store: store, live: live, policy: ImpersonationPolicy(config: loaded.config), events: audit)
        let services = ProxyServices(live: live, console: NoConsole(impersonations: impersonations), audit: audit)
        let loop = EmbeddedEventLoop()
        let context = LoopContext(
            eventLoop: loop, settings: ProxySettings(config: loaded.config), poolShare: 1, metrics: ProxyMetrics(), services: services)
        let channel = EmbeddedChannel(handler: DownstreamHandler(loop: context), loop: loop)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        try body(HandlerHarness(channel: channel, folder: folder))
        _ = try? channel.finish()
        audit.writer.close()
        await store.close()
    }

    /// Sends `request` and returns everything the handler wrote back.
    func exchange(_ request: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: request))
        var out = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            out += String(buffer: buffer)
        }
        return out
    }
}

@Suite("DownstreamHandler on an EmbeddedChannel")
struct DownstreamHandlerTests {
    @Test func traceIsRefusedWithAllowAndTheConnectionStaysOpen() async throws {
        try await HandlerHarness.with { harness in
            let answer = try harness.exchange("TRACE / HTTP/1.1\r\nHost: app.example\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
            #expect(answer.contains("\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n"))
            #expect(answer.contains("\"error\":\"method_not_allowed\""))
            #expect(!answer.contains("Connection: close"))
            #expect(harness.channel.isActive)
        }
    }

    @Test func anonymousBrowsersAreSentToSignIn() async throws {
        try await HandlerHarness.with { harness in
            let answer = try harness.exchange("GET /orders?id=7 HTTP/1.1\r\nHost: app.example\r\nAccept: text/html\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 302 Found\r\n"))
            #expect(answer.contains("\r\nLocation: /.actas/login?rd=/orders%3Fid%3D7\r\n"))
            #expect(answer.contains("Content-Type: text/html; charset=utf-8"))
        }
    }

    @Test func eachPipelinedRequestGetsItsOwnAnswerAndRequestID() async throws {
        try await HandlerHarness.with { harness in
            let answer = try harness.exchange(
                "GET /a HTTP/1.1\r\nHost: app.example\r\nAccept: text/html\r\n\r\n"
                    + "GET /b HTTP/1.1\r\nHost: app.example\r\nImpersonate-User: alice\r\n\r\n")
            let parts = answer.components(separatedBy: "HTTP/1.1 ").filter { !$0.isEmpty }
            #expect(parts.count == 2)
            #expect(parts.first?.hasPrefix("302 ") == true)
            // The second is not a browser page because the first was: JSON, its own code.
            #expect(parts.last?.hasPrefix("403 Forbidden") == true)
            #expect(parts.last?.contains("\"error\":\"impersonation_header\"") == true)
            let ids = parts.compactMap { $0.components(separatedBy: "X-Request-Id: ").dropFirst().first?.prefix(while: { $0 != "\r" }) }
            #expect(ids.count == 2 && ids[0] != ids[1])
        }
    }

    @Test func aMalformedHeadIsAnsweredAndTheConnectionClosed() async throws {
        try await HandlerHarness.with { harness in
            let answer = try harness.exchange("GET / HTTP/1.1\r\nHost: app.example\r\nX-Folded: a\r\n b\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
            #expect(answer.contains("Connection: close\r\n"))
            #expect(!harness.channel.isActive)
        }
    }
}
