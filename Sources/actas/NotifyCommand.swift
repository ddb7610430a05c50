import ActAsConfig
import ActAsCrypto
import ActAsNotify
import ArgumentParser
import Foundation
import ServiceLifecycle

struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Webhook notifications (notify.webhook_url).",
        subcommands: [NotifyTest.self]
    )
}

struct NotifyTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Send a signed test event to notify.webhook_url.",
        discussion: """
            POSTs {"id":"evt_…","type":"test","ts":…} (or a Slack text with \
            notify.webhook_format = "slack") with X-ActAs-Event-Id, X-ActAs-Timestamp and \
            X-ActAs-Signature (HMAC-SHA256 with notify.webhook_secret_file), prints the \
            receiver's status and exits 0 on a 2xx answer, 1 otherwise.
            """
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let config = try options.load()
        guard config.notify.enabled else {
            Diagnostics.error("actas: notify.webhook_url is not set in \(options.path)")
            throw ExitCode(1)
        }
        let payload = NotificationPayload.test(id: Secrets.identifier(prefix: "evt_"), at: Date())
        let client = WebhookClient(url: config.notify.webhookURL, secret: config.notify.secret)
        let outcome = await client.post(eventID: payload.id, body: NotificationSender.body(payload, format: config.notify.format))
        await client.shutdown()
        switch outcome {
        case .answered(let status):
            print("\(status)")
            if !outcome.isSuccess { throw ExitCode(1) }
        case .failed(let why):
            print("failed")
            Diagnostics.error("actas: \(payload.id) not delivered: \(why)")
            throw ExitCode(1)
        }
    }
}

/// Runs the webhook sender beside the proxy until shutdown.
struct NotifyService: Service {
    let sender: NotificationSender

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await sender.run() }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
