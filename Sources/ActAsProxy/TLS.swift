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

    /// What the handshake asks of a client when `listen.client_ca` is set.
    public enum ClientCertificates: Equatable, Sendable {
        /// No `client_ca`: none asked for.
        case notAsked
        /// Asked for and verified when presented; a client without one still connects (to sign
        /// in by password or OIDC). A presented certificate that does not verify fails the handshake.
        case optional
        /// The handshake fails without a certificate that verifies.
        case required
    }

    /// `client_ca` without `"mtls"` is a gate in front of every other sign-in: the certificate
    /// is required and verified, and signs no one in. With `"mtls"` it is optional, even as the
    /// only interactive method: SPEC §10 keeps §4–§9 for every sign-in method, so a client
    /// without a certificate still gets HTTP answers (public paths, the JWKS, API tokens, the
    /// 302/401 of §4), not a failed handshake. A certificate that is presented must verify.
    public static func clientCertificates(_ config: ActAsConfig) -> ClientCertificates {
        guard config.listen.clientCA != nil else { return .notAsked }
        return config.auth.mtls != nil ? .optional : .required
    }

    /// SPEC §10.4: `h2` and `http/1.1` (with mTLS sign-in too: each stream signs in as a
    /// connection's first request does, HTTP2Connection).
    public static let applicationProtocols = ["h2", "http/1.1"]

    /// Builds the server context from the configured files; errors name the file.
    public static func makeServerContext(_ config: ActAsConfig) throws -> NIOSSLContext {
        let listen = config.listen
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
        tls.applicationProtocols = applicationProtocols
        if let clientCA = listen.clientCA {
            // Only this CA: the system roots would let any public CA's certificate sign someone in.
            tls.trustRoots = .file(clientCA)
            tls.certificateVerification = clientCertificates(config) == .required ? .noHostnameVerification : .optionalVerification
            tls.sendCANameList = true
        }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw LoadError(description: "\(listen.tlsCert): certificate and key do not make a TLS context (\(error))")
        }
    }
}
