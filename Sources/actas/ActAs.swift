import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsLogging
import ArgumentParser
import Foundation

@main
struct ActAs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actas",
        abstract: "An impersonation-aware, TLS-terminating reverse proxy.",
        discussion: """
            ActAs sits in front of a web application, terminates TLS and forwards every request \
            with identity headers the application trusts. Configuration: proxy.conf (TOML), see \
            the README. Every key can be overridden with ACTAS_<SECTION>_<KEY>. People sign in \
            with a password, through the company's identity provider ([auth.oidc], OIDC code flow \
            with PKCE), with a client certificate (listen.client_ca, [auth.mtls]), or use API \
            tokens (actas tokens create).
            """,
        subcommands: [Serve.self, Check.self, Users.self, Tokens.self, ConsentCommand.self, Sessions.self, AuditCommand.self, Keys.self, Certs.self, Instances.self, StoreCommand.self, NotifyCommand.self]
    )

    /// ArgumentParser's default entry point, except that its error messages, which echo
    /// arguments (`Unknown option '--…'`, a thrown ValidationError), are escaped for the
    /// terminal like every other message (TerminalText).
    static func main() async {
        OperationalLog.bootstrap()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }  // --help, --version: printed as usual
            let message = fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((TerminalText.safeLines(message) + "\n").utf8)) }
            Foundation.exit(code.rawValue)
        }
    }
}

/// `--config`, default `./proxy.conf` or `ACTAS_CONFIG`.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file (default: $ACTAS_CONFIG or ./proxy.conf).", valueName: "file"))
    var config: String?

    var path: String {
        config ?? ProcessInfo.processInfo.environment["ACTAS_CONFIG"] ?? "proxy.conf"
    }

    /// Loads and validates, printing problems the way `check` does. Exit code 2 on errors.
    /// Warnings go to `warn` (`serve` logs them; other commands print them).
    func load(warn: (String) -> Void = { Diagnostics.warn($0) }) throws -> ActAsConfig {
        switch ConfigLoader(path: path).load() {
        case .success(let loaded):
            for warning in loaded.warnings { warn(warning) }
            return loaded.config
        case .failure(let errors):
            for issue in errors.issues { Diagnostics.error(issue.description) }
            throw ExitCode(2)
        }
    }
}

/// A command's answer to the person who ran it (a bad argument, a file that does not exist, a
/// change not confirmed): plain lines on stderr, whatever stderr is. What a running `serve` says
/// goes through swift-log instead (`OperationalLogHandler`). Messages often echo input (a
/// username, a file's value): each line is escaped for the terminal (`TerminalText.safeLines`).
enum Diagnostics {
    static func warn(_ message: String) {
        FileHandle.standardError.write(Data("warning: \(TerminalText.safeLines(message))\n".utf8))
    }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("\(TerminalText.safeLines(message))\n".utf8))
    }

    static func info(_ message: String) {
        FileHandle.standardError.write(Data("\(TerminalText.safeLines(message))\n".utf8))
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the configuration and print every problem as file:line: key: message.",
        discussion: "Exit status: 0 when valid, 2 when not."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try options.load()
        print("\(options.path): ok (https \(config.listen.https), upstream \(config.upstream.url))")
    }
}

struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Certificates for development.",
        subcommands: [Dev.self]
    )

    struct Dev: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a development CA and a server certificate for localhost, 127.0.0.1 and ::1.",
            discussion: """
                Writes listen.tls_cert and listen.tls_key from the configuration (default \
                certs/server.crt and certs/server.key), and dev-ca.crt/dev-ca.key beside them. \
                An existing CA is reused, so a browser that trusts it keeps trusting new server \
                certificates. For development only.
                """
        )

        @OptionGroup var options: ConfigOption

        func run() throws {
            let config = try options.load()
            let paths = DevCertificates.paths(serverCert: config.listen.tlsCert, serverKey: config.listen.tlsKey)
            do {
                try DevCertificates.create(at: paths)
            } catch {
                Diagnostics.error("actas certs dev: \(error.localizedDescription)")
                throw ExitCode(1)
            }
            print("wrote \(paths.serverCert) and \(paths.serverKey) (CA: \(paths.caCert))")
            print("trust the CA for local testing, e.g.: curl --cacert \(paths.caCert) https://localhost:\(config.listen.https.port)/")
        }
    }
}
