@testable import ActAsConfig
@testable import ActAsProxy
import Foundation
import Testing

/// What the handshake asks of clients for each `listen.client_ca` / `auth.methods` combination.
struct ClientCertificateModeTests {
    func config(clientCA: Bool, methods: [String]) throws -> ActAsConfig {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mtls-mode-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".utf8).write(to: directory.appendingPathComponent("ca.pem"))
        let list = methods.map { "\"\($0)\"" }.joined(separator: ", ")
        let text = (clientCA ? "[listen]\nclient_ca = \"ca.pem\"\n" : "") + "[auth]\nmethods = [\(list)]\n"
        return try ConfigLoader(path: directory.appendingPathComponent("proxy.conf").path, environment: [:]).load(text: text).get().config
    }

    @Test func modes() throws {
        #expect(TLSSetup.clientCertificates(try config(clientCA: false, methods: ["password"])) == .notAsked)
        #expect(TLSSetup.clientCertificates(try config(clientCA: true, methods: ["password"])) == .required)
        #expect(TLSSetup.clientCertificates(try config(clientCA: true, methods: ["password", "mtls"])) == .optional)
        // SPEC §10: §4–§9 hold for every method, so clients without a certificate still get HTTP.
        #expect(TLSSetup.clientCertificates(try config(clientCA: true, methods: ["mtls", "token"])) == .optional)
        #expect(TLSSetup.clientCertificates(try config(clientCA: true, methods: ["mtls"])) == .optional)
    }
}
