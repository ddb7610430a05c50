import ActAsCore
import ActAsCrypto
import Foundation
import SQLiteNIO

/// The public half of a signing key that was deleted after its grace period. The private key
/// is gone (rotation's point); the public key stays so that request-log checkpoints it signed
/// still verify (SPEC §10.6) after any number of rotations. Never published in the JWKS.
public struct RetiredPublicKey: Sendable, Equatable {
    public var kid: String
    /// Raw P-256 public key, x ‖ y (64 bytes).
    public var publicKey: Data
    public var createdAt: Date
    public var deletedAt: Date

    public init(kid: String, publicKey: Data, createdAt: Date, deletedAt: Date) {
        self.kid = kid
        self.publicKey = publicKey
        self.createdAt = createdAt
        self.deletedAt = deletedAt
    }

    /// The public half of `privateKey`; nil when the bytes are not a P-256 private key.
    public init?(kid: String, privateKey: Data, createdAt: Date, deletedAt: Date) {
        guard let key = try? AssertionKey(rawPrivateKey: privateKey), let x = key.jwk["x"].flatMap(Base64URL.decode),
              let y = key.jwk["y"].flatMap(Base64URL.decode) else { return nil }
        self.init(kid: kid, publicKey: x + y, createdAt: createdAt, deletedAt: deletedAt)
    }

    /// A verify-only key for checkpoints, through the same JWK reading as `--jwks` (its `kid`
    /// must be the key's thumbprint); nil when the bytes are not a P-256 public key.
    public var verificationKey: AssertionKey? {
        guard publicKey.count == 64 else { return nil }
        let jwk: [String: String] = [
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": Base64URL.encode(publicKey.prefix(32)), "y": Base64URL.encode(publicKey.suffix(32)),
        ]
        guard let document = try? JSONSerialization.data(withJSONObject: ["keys": [jwk]]) else { return nil }
        return AssertionKey.keys(fromJWKS: document)?.first
    }
}

/// Migration 9: the archive of deleted keys' public halves.
extension SQLiteStore {
    static let retiredPublicKeysMigration: [String] = [
        """
        CREATE TABLE retired_public_keys (
            kid TEXT PRIMARY KEY,
            public_key BLOB NOT NULL,
            created_at REAL NOT NULL,
            deleted_at REAL NOT NULL)
        """,
    ]

    public func retiredPublicKeys() async throws -> [RetiredPublicKey] {
        try await query("SELECT * FROM retired_public_keys ORDER BY created_at").compactMap { row in
            guard let kid = row.column("kid")?.string, var blob = row.column("public_key")?.blob,
                  let bytes = blob.readBytes(length: blob.readableBytes) else { return nil }
            return RetiredPublicKey(kid: kid, publicKey: Data(bytes), createdAt: Self.readDate(row, "created_at") ?? Date(timeIntervalSince1970: 0),
                                    deletedAt: Self.readDate(row, "deleted_at") ?? Date(timeIntervalSince1970: 0))
        }
    }

    /// Keeps the public half of a key being deleted (in the deleting transaction).
    static func archive(_ key: RetiredPublicKey, in tx: Transaction) async throws {
        try await tx.run("INSERT OR IGNORE INTO retired_public_keys (kid, public_key, created_at, deleted_at) VALUES (?, ?, ?, ?)", [
            .text(key.kid), .blob(ByteBuffer(bytes: key.publicKey)), .float(key.createdAt.timeIntervalSince1970),
            .float(key.deletedAt.timeIntervalSince1970),
        ])
    }
}
