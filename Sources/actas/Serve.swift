import ActAsConfig
import ActAsConsole
import ActAsCrypto
import ActAsDemo
import ActAsNotify
import ActAsProxy
import ActAsSessions
import ActAsStore
import ActAsStorePostgres
import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy.",
        discussion: """
            Listens on listen.https (and listen.http, which redirects to https), signs people in, \
            forwards to upstream.url with identity headers, serves the console under /.actas/ \
            and /healthz, /readyz and /metrics on listen.admin. Opens (and migrates) the store, \
            writes the request log to audit.file, and with demo.enabled starts the demo app and \
            creates demo users in an empty directory. SIGHUP reloads the configuration and \
            certificates (a bad new configuration is reported and the running one kept) and \
            reopens the request log; SIGTERM stops accepting, drains in-flight requests for up to \
            limits.drain_timeout and exits 0. Configuration errors exit 2.
            """
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let logger = Logger(label: "actas")
        // Warnings about the file go to the log like everything else `serve` says (SIGHUP's too).
        let config = try options.load(warn: { logger.warning("\($0)") })

        try ensureCertificates(config, logger: logger)
        // Before any socket or file is opened: the soft descriptor limit up to the hard one.
        if let warning = DescriptorBudget.prepare(config) { logger.warning("\(warning)") }

        let threads = config.listen.threads > 0 ? config.listen.threads : System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)

        if config.demo.enabled {
            do {
                _ = try await DemoApp.start(host: config.upstream.host, port: config.upstream.port, group: group)
                logger.info("demo app listening on \(config.upstream.url)")
            } catch {
                logger.error("cannot start the demo app on \(config.upstream.url): \(error)")
                throw ExitCode(1)
            }
        }

        // A reader that went away must not kill the proxy (audit.file = "-" piped somewhere).
        signal(SIGPIPE, SIG_IGN)

        // State: the store, the signing key, the live copy the request path reads.
        // Changes made through this instance's console or API are announced to the others
        // sharing the store before the call returns (SPEC §10.1).
        let instanceID = InstanceRecord.resolveID(configured: config.listen.instanceID, hostName: ProcessInfo.processInfo.hostName,
                                                  adminPort: config.listen.admin?.port)
        let opened = try await StoreAccess.open(config, applicationName: "actas serve \(instanceID)")
        let store: any Store = AnnouncingStore(opened, instanceID: instanceID, logger: logger)
        let health = StoreHealth(grace: .milliseconds(config.store.grace.milliseconds))
        let live = LiveState()
        let directory = Directory(store: store, live: live, knownRoles: config.roles.order)
        let copier = SessionAuditCopier(instance: instanceID, logger: logger)
        let checkpointCopier = CheckpointCopier(logger: logger)
        let events = try AuditEvents.open(config, instance: instanceID, copier: copier, checkpoints: CheckpointCopier.settings(
            config, instanceID: instanceID, live: live, copier: checkpointCopier), logger: logger)
        let copying = Task { await copier.run(into: store) }
        let copyingCheckpoints = Task { await checkpointCopier.run(into: store) }
        let console = Console(config: config, directory: directory, live: live, events: events)
        // SPEC §10.5: this instance's session records reach live viewers as soon as they are durable.
        events.observeSessionLines { console.liveFeed.publish($0) }
        do {
            try console.configureOIDC(config)
        } catch {
            logger.error("auth.oidc: cannot load the provider's trusted roots (ca_file or SSL_CERT_FILE): \(error)")
            throw ExitCode(2)
        }
        // Changes made by other processes (`actas sessions end`, `actas consent …`) are
        // recorded here, where they are enforced.
        let sync = StateSync(
            store: store, state: live, health: health,
            onImpersonationEnded: { console.impersonations.endedElsewhere($0) },
            onConsentChanged: { console.impersonations.consentChangedElsewhere(before: $0, after: $1) })
        do {
            try await KeyManager.ensureSigningKey(store)
            if config.demo.enabled { try await DemoUsers.seedIfEmpty(directory, logger: logger) }
            try await sync.loadSnapshot()
        } catch {
            logger.error("cannot prepare the store: \(error)")
            throw ExitCode(1)
        }

        // SIGHUP is trapped before the listeners answer /readyz: one sent right after start
        // reloads, rather than ending the process (the signal's default action) or being lost.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let server: ProxyServer
        let metrics = ProxyMetrics()
        do {
            server = try ProxyServer(config: config, group: group, metrics: metrics, services: ProxyServices(live: live, console: console, audit: events, storeHealth: health, directory: directory))
            try await server.start()
        } catch {
            logger.error("cannot start: \(error)")
            throw ExitCode(1)
        }
        let listening: String = "listening on https://\(Self.describe(server.httpsAddress, fallback: config.listen.https))"
            + (config.listen.http.map { " (redirect from http://\($0))" } ?? "")
            + (server.adminAddress.map { ", admin http://\(Self.describe($0, fallback: config.listen.admin!))" } ?? "")
            + ", upstream \(config.upstream.url), \(threads) threads"
        logger.info("\(listening)")

        let registration: InstanceRegistration
        do {
            registration = try await InstanceRegistration.register(store: store, server: server, sync: sync, id: instanceID, logger: logger)
        } catch {
            logger.error("cannot record this instance in the store: \(error)")
            throw ExitCode(1)
        }
        server.markReady()

        var service = ProxyService(server: server, audit: events, configPath: options.path, hangups: hangups, logger: logger)
        // Live streams never finish by themselves: ended first, so the drain does not wait on them.
        service.beforeDrain = { console.liveFeed.close() }
        service.console = console
        // PostgreSQL: other instances' changes ring the feed reader at once (LISTEN/NOTIFY).
        let listener = (opened as? PostgresStore).map {
            ChangeListener(store: $0, applicationName: "actas listen \(instanceID)", logger: logger)
        }
        let feed = ChangeFeedService(sync: sync, listener: listener, impersonations: console.impersonations, logger: logger)
        // SPEC §10.5: the outbox's webhook sender, off the request path.
        let notify = NotifyService(sender: NotificationSender(
            settings: config.notify, store: store, owner: instanceID, origin: PublicOrigin.of(config),
            registry: metrics.registry, logger: logger))
        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: [.init(service: service), .init(service: feed), .init(service: registration), .init(service: notify)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await serviceGroup.run()
        events.writer.close()
        copier.finish()
        checkpointCopier.finish()
        await copying.value
        await copyingCheckpoints.value
        await store.close()
        try? await group.shutdownGracefully()
        logger.info("stopped")
    }

    static func describe(_ address: SocketAddress?, fallback: SocketAddressSpec) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return fallback.description }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// `listen.dev_certs`: make development certificates when the configured files are missing.
    func ensureCertificates(_ config: ActAsConfig, logger: Logger) throws {
        let manager = FileManager.default
        let certExists = manager.fileExists(atPath: config.listen.tlsCert)
        let keyExists = manager.fileExists(atPath: config.listen.tlsKey)
        guard !(certExists && keyExists) else { return }
        guard config.listen.devCerts else {
            let missing = certExists ? config.listen.tlsKey : config.listen.tlsCert
            Diagnostics.error("\(options.path): listen.tls_cert/tls_key: \(missing) does not exist (run `actas certs dev`, or set listen.dev_certs = true)")
            throw ExitCode(2)
        }
        let paths = DevCertificates.paths(serverCert: config.listen.tlsCert, serverKey: config.listen.tlsKey)
        do {
            try DevCertificates.create(at: paths)
        } catch {
            logger.error("cannot create development certificates: \(error.localizedDescription)")
            throw ExitCode(1)
        }
        logger.warning("""
            listen.dev_certs: created a DEVELOPMENT certificate for localhost in \((paths.serverCert as NSString).deletingLastPathComponent) \
            (CA: \(paths.caCert)). Browsers will warn until you trust that CA. Never use it in production: \
            set listen.tls_cert/tls_key to real certificates and listen.dev_certs = false.
            """)
    }
}

/// Polls the store's change feed so changes made by other processes (`actas users suspend`,
/// another instance) reach the live state.
struct ChangeFeedService: Service {
    let sync: StateSync
    let listener: ChangeListener?
    let impersonations: Impersonations
    let logger: Logger

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await sync.run(logger: logger) }
            if let listener {
                let doorbell = sync.doorbell
                group.addTask { await listener.run { doorbell.ring() } }
            }
            // Sessions end on time even when nobody makes a request (WebSockets are cut, the
            // end is logged); the request path also checks on its own.
            group.addTask {
                while !Task.isCancelled {
                    await impersonations.sweep()
                    try? await Task.sleep(for: .milliseconds(250))
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}

/// Runs until SIGTERM/SIGINT, reloading on SIGHUP; then drains.
struct ProxyService: Service {
    let server: ProxyServer
    let audit: AuditLog
    let configPath: String
    let hangups: UnixSignalsSequence
    let logger: Logger
    var beforeDrain: @Sendable () -> Void = {}
    /// Reloads `[auth.oidc]` with the rest (its provider client is built first: a bad one fails the reload).
    var console: Console?

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in hangups {
                    reload()
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        logger.info("draining (stopped accepting connections)")
        beforeDrain()
        await server.drain()
    }

    func reload() {
        // After an external logrotate moved the request log away: continue in a new file.
        audit.writer.reopen()
        switch ConfigLoader(path: configPath).load() {
        case .success(let loaded):
            for warning in loaded.warnings { logger.warning("\(warning)") }
            do {
                let oidc = try console?.prepareOIDCReload(loaded.config)
                let notes: [String]
                do {
                    notes = try server.reload(loaded.config)
                } catch {
                    if let oidc { console?.finishOIDCReload(oidc, applied: false) }
                    throw error
                }
                if let oidc { console?.finishOIDCReload(oidc, applied: true) }
                for note in notes { logger.warning("\(note)") }
                logger.info("reloaded \(configPath)")
            } catch {
                logger.error("reload failed, keeping the running configuration: \(error)")
            }
        case .failure(let errors):
            for issue in errors.issues { logger.error("\(issue.description)") }
            logger.error("reload failed, keeping the running configuration")
        }
    }
}
