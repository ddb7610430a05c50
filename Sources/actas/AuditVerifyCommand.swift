import ActAsAudit
import ActAsConfig
import ActAsCore
import ActAsCrypto
import ActAsStore
import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

extension AuditCommand {
    /// `actas audit verify`: the hash chain (SPEC §8) and the signed checkpoints (§10.6).
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify the request log: its hash chain and its signed checkpoints.",
            discussion: """
                Give the files in chain order: the rotated files oldest first, then the current \
                one (`actas audit verify logs/audit.jsonl.* logs/audit.jsonl`). Without FILE, the \
                configured audit.file and its rotated files are verified. Prints `ok: N records, \
                last seq S` (exit 0), or each problem found (exit 1): `broken at seq S (FILE:LINE): \
                why`, `checkpoint S: bad signature`, `checkpoint S: head does not match`, \
                `truncated: log ends at seq S, store has checkpoint T`. Every checkpoint's signature \
                is checked against the store's key ring (from proxy.conf), or against the keys of \
                --jwks (a file or URL of /.well-known/actas/jwks.json), which needs no proxy.conf \
                and no store; only the store can show a log cut after its last checkpoint. When the \
                first record given is not seq 1 (older files left out), its prev is taken on trust \
                and a note on stderr says so. Exit 2 when a file cannot be read or the keys \
                cannot be had.
                """
        )

        @OptionGroup var options: ConfigOption
        @Option(help: ArgumentHelp("Check checkpoint signatures against this JWKS (file, or http(s) URL) instead of the store's key ring; no proxy.conf needed.", valueName: "file|url"))
        var jwks: String?
        @Argument(help: ArgumentHelp("Log files, oldest first (default: the configured log and its rotated files).", valueName: "file"))
        var files: [String] = []

        func run() async throws {
            // Keys first: from --jwks, else from the store of proxy.conf (when there is one).
            var keys: [AssertionKey]?
            var config: ActAsConfig?
            if let jwks {
                keys = try await Self.loadJWKS(jwks)
            } else if files.isEmpty || options.config != nil || ProcessInfo.processInfo.environment["ACTAS_CONFIG"] != nil
                || FileManager.default.fileExists(atPath: options.path)
            {
                config = try options.load()
            }
            var files = self.files
            if files.isEmpty {
                let path = try AuditLogLocation.path(file: nil, options: options, command: "verify", loaded: config)
                files = AuditFiles.chainOrder(for: path)
                if files.isEmpty {
                    Diagnostics.error("actas audit verify: there is no request log at \(TerminalText.safe(path)) yet")
                    throw ExitCode(2)
                }
            }
            for file in files {
                if let problem = AuditLogLocation.unreadable(file) {
                    Diagnostics.error("actas audit verify: \(TerminalText.safe(file)): \(problem)")
                    throw ExitCode(2)
                }
            }
            var store: (any Store)?
            if let config {
                let opened = try await StoreAccess.open(config)
                store = opened
                do {
                    keys = try await opened.signingKeys().compactMap { try? AssertionKey(rawPrivateKey: $0.privateKey) }
                    // Keys deleted by rotation signed older checkpoints: their public halves still check them.
                        + opened.retiredPublicKeys().compactMap(\.verificationKey)
                } catch {
                    await opened.close()
                    Diagnostics.error("actas audit verify: cannot read the key ring from the store: \(error)")
                    throw ExitCode(2)
                }
            }
            let ring = keys
            let report = AuditVerifier.verify(files: files, signatures: ring.map { keys in
                { checkpoint in
                    switch CheckpointSigner.verify(checkpoint, keys: keys) {
                    case .valid: return .valid
                    case .unknownKey: return .unknownKey
                    case .badSignature: return .invalid
                    }
                }
            })

            var problems = report.problems
            if let store {
                var instances = report.instances
                // This instance's checkpoints too: a log stripped of all of them still shows.
                if let config {
                    let own = InstanceRecord.resolveID(configured: config.listen.instanceID, hostName: ProcessInfo.processInfo.hostName,
                                                       adminPort: config.listen.admin?.port)
                    if !instances.contains(own) { instances.append(own) }
                }
                do {
                    for instance in instances {
                        if let stored = try await store.latestCheckpoint(instance: instance), let problem = report.problem(againstStored: stored) {
                            problems.append(problem)
                        }
                    }
                } catch {
                    await store.close()
                    Diagnostics.error("actas audit verify: cannot read the checkpoints from the store: \(error)")
                    throw ExitCode(2)
                }
                await store.close()
            }
            if !report.signaturesChecked && !report.checkpoints.isEmpty {
                Diagnostics.error("actas audit verify: the log has \(report.checkpoints.count) signed checkpoint\(report.checkpoints.count == 1 ? "" : "s"); to check their signatures give --config (the store's key ring) or --jwks FILE|URL")
                throw ExitCode(2)
            }

            let lines = AuditVerificationOutput.lines(chain: report.chain, problems: problems)
            for line in lines.stdout { print(TerminalText.safe(line)) }
            for line in lines.stderr { Diagnostics.info(TerminalText.safe(line)) }
            if jwks != nil && store == nil && report.chain.isOK && problems.isEmpty {
                Diagnostics.info("note: checked against --jwks without the store: a log cut after its last checkpoint cannot be told from a complete one")
            }
            if !lines.ok { throw ExitCode(1) }
        }

        /// The P-256 keys of a JWKS file or URL.
        static func loadJWKS(_ source: String) async throws -> [AssertionKey] {
            let data: Data
            let lowered = source.lowercased()
            if lowered.hasPrefix("https://") || lowered.hasPrefix("http://") {
                guard let url = URL(string: source) else {
                    Diagnostics.error("actas audit verify: --jwks \(TerminalText.safe(source)): not a URL")
                    throw ExitCode(2)
                }
                do {
                    let (body, response) = try await URLSession.shared.data(from: url)
                    if let status = (response as? HTTPURLResponse)?.statusCode, status != 200 {
                        Diagnostics.error("actas audit verify: --jwks \(TerminalText.safe(source)): HTTP \(status)")
                        throw ExitCode(2)
                    }
                    data = body
                } catch let error as ExitCode {
                    throw error
                } catch {
                    Diagnostics.error("actas audit verify: --jwks \(TerminalText.safe(source)): \(error.localizedDescription) (for a server whose certificate this machine does not trust, download the JWKS and give the file)")
                    throw ExitCode(2)
                }
            } else {
                if let problem = AuditLogLocation.unreadable(source) {
                    Diagnostics.error("actas audit verify: --jwks \(TerminalText.safe(source)): \(problem)")
                    throw ExitCode(2)
                }
                guard let contents = FileManager.default.contents(atPath: source) else {
                    Diagnostics.error("actas audit verify: --jwks \(TerminalText.safe(source)): cannot read")
                    throw ExitCode(2)
                }
                data = contents
            }
            guard let keys = AssertionKey.keys(fromJWKS: data) else {
                Diagnostics.error("actas audit verify: --jwks \(TerminalText.safe(source)): not a JWKS (a JSON object with \"keys\")")
                throw ExitCode(2)
            }
            return keys
        }
    }
}
