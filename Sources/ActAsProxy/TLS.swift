import ActAsConfig
import NIOSSL

public enum TLSSetup {
    /// Mozilla "intermediate" (v5.7) for TLS 1.2: ECDHE with AES-GCM or ChaCha20 only.
    /// TLS 1.3 suites are fixed by BoringSSL and all strong.
    static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Builds the server context from the configured files; errors name the file.
    public static func makeServerContext(_ listen: ActAsConfig.Listen) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(listen.tlsCert)
        } catch {
            throw LoadError(description: "\(listen.tlsCert): cannot load certificate chain (\(error))")
        }
        guard !chain.isEmpty else { throw LoadError(description: "\(listen.tlsCert): no certificate in file") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: listen.tlsKey, format: .pem)
        } catch {
            throw LoadError(description: "\(listen.tlsKey): cannot load private key (\(error))")
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        tls.cipherSuites = tls12Ciphers
        tls.curves = [.x25519, .secp256r1, .secp384r1]
        tls.applicationProtocols = ["http/1.1"]
        if let clientCA = listen.clientCA {
            // Mutual TLS: a client certificate signed by this CA is required.
            tls.trustRoots = .file(clientCA)
            tls.certificateVerification = .noHostnameVerification
            tls.sendCANameList = true
        }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw LoadError(description: "\(listen.tlsCert): certificate and key do not make a TLS context (\(error))")
        }
    }
}
