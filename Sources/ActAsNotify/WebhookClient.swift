import ActAsConfig
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One signed POST to the webhook (SPEC §10.5): each attempt has its own timestamp and
/// signature; the event id is the same on every attempt.
public struct WebhookClient: Sendable {
    public enum Outcome: Sendable, Equatable {
        case answered(status: Int)
        case failed(String)

        public var isSuccess: Bool {
            if case .answered(let status) = self { return (200...299).contains(status) }
            return false
        }
    }

    public let url: String
    public let secret: [UInt8]?
    public let timeout: TimeAmount
    let client: HTTPClient

    /// The sender's own client: a redirect is never followed (a 3xx is a failed attempt, so a
    /// receiver cannot bounce signed events to another host or to plain http), and answers
    /// are not decompressed (only their status matters). Call `shutdown()` when done.
    public init(url: String, secret: [UInt8]?, timeout: TimeAmount = .seconds(10)) {
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled))
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// The headers of one attempt (a pure function, for tests).
    public static func headers(eventID: String, body: [UInt8], secret: [UInt8]?, timestamp: Int64) -> [(String, String)] {
        var headers: [(String, String)] = [
            ("Content-Type", "application/json"),
            ("User-Agent", "ActAs-Webhook"),
            ("X-ActAs-Event-Id", eventID),
            ("X-ActAs-Timestamp", String(timestamp)),
        ]
        if let secret {
            headers.append(("X-ActAs-Signature", WebhookSignature.header(secret: secret, timestamp: timestamp, body: body)))
        }
        return headers
    }

    public func post(eventID: String, body: [UInt8], now: Date = Date()) async -> Outcome {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in Self.headers(eventID: eventID, body: body, secret: secret, timestamp: Int64(now.timeIntervalSince1970)) {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: timeout)
            // The answer's body is not needed; read a little so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 << 10)
            return .answered(status: Int(response.status.code))
        } catch {
            return .failed("\(error)")
        }
    }
}
