import ActAsConfig
import Foundation
import Testing

/// `[auth.mtls]` and `listen.client_ca` (SPEC §3, §10.3): the CA file is checked, errors name
/// the file, line and key.
struct MTLSConfigTests {
    let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mtls-config-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    func load(_ text: String) -> Result<ConfigLoader.Loaded, ConfigErrors> {
        ConfigLoader(path: directory.appendingPathComponent("proxy.conf").path, environment: [:]).load(text: text)
    }

    func write(_ name: String, _ text: String) {
        try! Data(text.utf8).write(to: directory.appendingPathComponent(name))
    }

    static let pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n"

    @Test(arguments: ["cn", "san_email", "san_email_local", "san_dns"])
    func mtlsWithAReadableCAIsAccepted(rule: String) throws {
        write("ca.pem", "# the client CA\n" + Self.pem)
        let text = "[listen]\nclient_ca = \"ca.pem\"\n[auth]\nmethods = [\"password\", \"mtls\"]\n[auth.mtls]\nusername_from = \"\(rule)\""
        let config = try load(text).get().config
        #expect(config.auth.mtls?.usernameFrom == rule)
        #expect(config.listen.clientCA == directory.appendingPathComponent("ca.pem").path)
    }

    @Test func withoutMTLSInMethodsThereIsNoMTLSSection() throws {
        write("ca.pem", Self.pem)
        let config = try load("[listen]\nclient_ca = \"ca.pem\"\n[auth]\nmethods = [\"password\"]").get().config
        #expect(config.auth.mtls == nil)
        #expect(config.listen.clientCA != nil)
    }

    @Test func mtlsNeedsClientCA() {
        guard case .failure(let errors) = load("[auth]\nmethods = [\"mtls\"]") else { Issue.record("accepted"); return }
        #expect(errors.issues.contains { $0.key == "auth.methods" && $0.message.contains("listen.client_ca") && $0.line == 2 })
    }

    @Test(arguments: [("empty.pem", ""), ("key.pem", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"),
                      ("garbage.pem", "-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n"),
                      ("binary.der", "\u{30}\u{82}\u{01}")])
    func aCAFileWithoutACertificateIsRefusedByFileLineAndKey(name: String, contents: String) {
        write(name, contents)
        let text = "[listen]\nclient_ca = \"\(name)\"\n[auth]\nmethods = [\"password\", \"mtls\"]"
        guard case .failure(let errors) = load(text) else { Issue.record("accepted"); return }
        let issue = errors.issues.first { $0.key == "listen.client_ca" }
        #expect(issue?.line == 2)
        #expect(issue?.file.hasSuffix("proxy.conf") == true)
        #expect(issue?.message.contains(directory.appendingPathComponent(name).path) == true)
    }

    @Test func aMissingCAFileIsRefusedEvenWithoutMTLS() {
        guard case .failure(let errors) = load("[listen]\nclient_ca = \"nowhere.pem\"") else { Issue.record("accepted"); return }
        #expect(errors.issues.contains { $0.key == "listen.client_ca" && $0.message.contains("cannot read") })
    }
}
