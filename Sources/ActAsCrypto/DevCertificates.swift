import Crypto
import Foundation
import SwiftASN1
import X509

/// A development CA and a server certificate for localhost, 127.0.0.1 and ::1, so a first run
/// has TLS without openssl incantations. Never for production: the CA key sits next to it.
public enum DevCertificates {
    public struct Paths: Sendable {
        public var caCert: String
        public var caKey: String
        public var serverCert: String
        public var serverKey: String
    }

    /// Paths that `certs dev` writes: the server pair where the config expects it, the CA
    /// beside the server certificate.
    public static func paths(serverCert: String, serverKey: String) -> Paths {
        let folder = (serverCert as NSString).deletingLastPathComponent
        return Paths(
            caCert: (folder as NSString).appendingPathComponent("dev-ca.crt"),
            caKey: (folder as NSString).appendingPathComponent("dev-ca.key"),
            serverCert: serverCert,
            serverKey: serverKey
        )
    }

    /// Creates the CA (or reuses an existing one, so browsers that trust it keep trusting)
    /// and a fresh server certificate. Keys are written 0600.
    public static func create(at paths: Paths, now: Date = Date()) throws {
        for path in [paths.caCert, paths.serverCert, paths.serverKey] {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        }
        let caKey: P256.Signing.PrivateKey
        let caCertificate: Certificate
        if FileManager.default.fileExists(atPath: paths.caKey), FileManager.default.fileExists(atPath: paths.caCert) {
            caKey = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: paths.caKey, encoding: .utf8))
            caCertificate = try Certificate(pemEncoded: String(contentsOfFile: paths.caCert, encoding: .utf8))
        } else {
            caKey = P256.Signing.PrivateKey()
            let name = try DistinguishedName {
                OrganizationName("ActAs development")
                CommonName("ActAs development CA")
            }
            caCertificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: .init(caKey.publicKey),
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(5 * 365 * 86400),
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: .init(caKey.publicKey))
                },
                issuerPrivateKey: .init(caKey)
            )
            try write(caKey.pemRepresentation, to: paths.caKey, mode: 0o600)
            try write(try caCertificate.serializeAsPEM().pemString, to: paths.caCert, mode: 0o644)
        }

        let serverKey = P256.Signing.PrivateKey()
        let server = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(serverKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            // Mozilla's TLS guidelines ask for at most 366 days (browsers refuse more than 398).
            notValidAfter: now.addingTimeInterval(365 * 86400),
            issuer: caCertificate.subject,
            subject: try DistinguishedName {
                OrganizationName("ActAs development")
                CommonName("localhost")
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([
                    .dnsName("localhost"),
                    .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                    .ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
                ])
            },
            issuerPrivateKey: .init(caKey)
        )
        try write(serverKey.pemRepresentation, to: paths.serverKey, mode: 0o600)
        // The chain: leaf then CA, so clients that only know the CA can verify it.
        let chain = try server.serializeAsPEM().pemString + "\n" + caCertificate.serializeAsPEM().pemString + "\n"
        try write(chain, to: paths.serverCert, mode: 0o644)
    }

    static func write(_ text: String, to path: String, mode: mode_t) throws {
        // Create with the final mode: a key must never exist world-readable, even briefly.
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard fd >= 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "cannot write \(path): \(String(cString: strerror(errno)))"])
        }
        defer { close(fd) }
        fchmod(fd, mode)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
            written += n
        }
    }
}
