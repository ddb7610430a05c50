import ActAsCore
import ActAsStore
import Foundation
import PostgresNIO

/// Deleted keys' public halves (SPEC §10.6, migration 9), as `RetiredPublicKeys.swift` for SQLite.
extension PostgresStore {
    static let retiredPublicKeysMigration: [String] = [
        """
        CREATE TABLE retired_public_keys (
            kid TEXT PRIMARY KEY,
            public_key BYTEA NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            deleted_at DOUBLE PRECISION NOT NULL)
        """,
    ]

    public func retiredPublicKeys() async throws -> [RetiredPublicKey] {
        try await query("SELECT * FROM retired_public_keys ORDER BY created_at").compactMap(Self.retiredPublicKey)
    }

    static func retiredPublicKey(_ row: Row) -> RetiredPublicKey? {
        guard let kid = row.string("kid"), let bytes = row.bytes("public_key") else { return nil }
        return RetiredPublicKey(kid: kid, publicKey: bytes, createdAt: row.date("created_at") ?? epoch, deletedAt: row.date("deleted_at") ?? epoch)
    }

    /// Keeps the public half of a key being deleted (in the deleting transaction, or a copy's).
    static func archive(_ key: RetiredPublicKey, in tx: Transaction) async throws {
        try await tx.run("""
            INSERT INTO retired_public_keys (kid, public_key, created_at, deleted_at)
            VALUES (\(key.kid), \(ByteBuffer(bytes: key.publicKey)), \(key.createdAt.timeIntervalSince1970), \(key.deletedAt.timeIntervalSince1970))
            ON CONFLICT (kid) DO NOTHING
            """)
    }
}
