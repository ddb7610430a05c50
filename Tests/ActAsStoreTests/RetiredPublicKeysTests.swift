import ActAsCore
import ActAsCrypto
import Foundation
import Testing
@testable import ActAsStore

@Suite("Store: deleted signing keys keep their public halves")
struct RetiredPublicKeysTests {
    /// Two rotations, then housekeeping deletes both retired keys: the ring keeps only the
    /// current key, and the archive has the public halves of the two deleted ones — which
    /// check what they signed and nothing else.
    @Test(arguments: StoreKind.all) func twoRotationsThenDeletionKeepBothPublicHalves(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let generated = (0..<3).map { _ in AssertionKey.generate() }
            var current: String?
            for (index, (raw, key)) in generated.enumerated() {
                let record = SigningKeyRecord(kid: key.kid, privateKey: raw, createdAt: t0 + Double(index * 100))
                #expect(try await store.addSigningKey(record, retiring: current, at: t0 + Double(index * 100)))
                current = key.kid
            }
            #expect(try await store.retiredPublicKeys().isEmpty)
            try await store.deleteSigningKeys(retiredBefore: t0 + 1000)
            #expect(try await store.signingKeys().map(\.kid) == [generated[2].key.kid])

            let archived = try await store.retiredPublicKeys()
            #expect(archived.map(\.kid) == [generated[0].key.kid, generated[1].key.kid])
            for (entry, (_, key)) in zip(archived, generated) {
                let verifier = try #require(entry.verificationKey)
                #expect(verifier.kid == key.kid)
                #expect(verifier.privateKey == nil)
                let (kid, sig) = try CheckpointSigner.sign(covers: 7, head: String(repeating: "a", count: 64), instance: "i1", with: key)
                #expect(CheckpointSigner.verify(covers: 7, head: String(repeating: "a", count: 64), instance: "i1", kid: kid, sig: sig,
                                                keys: [verifier]) == .valid)
                #expect(CheckpointSigner.verify(covers: 8, head: String(repeating: "a", count: 64), instance: "i1", kid: kid, sig: sig,
                                                keys: [verifier]) == .badSignature)
            }
            // Deleting again (another instance's housekeeping) changes nothing.
            try await store.deleteSigningKeys(retiredBefore: t0 + 1000)
            #expect(try await store.retiredPublicKeys() == archived)
        }
    }

    @Test func anEntryWhoseKidIsNotItsKeysThumbprintVerifiesNothing() throws {
        let (raw, key) = AssertionKey.generate()
        let other = AssertionKey.generate().key
        var entry = try #require(RetiredPublicKey(kid: key.kid, privateKey: raw, createdAt: t0, deletedAt: t0))
        #expect(entry.verificationKey?.kid == key.kid)
        entry.kid = other.kid  // an archive row edited to claim another key's kid
        #expect(entry.verificationKey == nil)
        #expect(RetiredPublicKey(kid: "k", privateKey: Data([1, 2, 3]), createdAt: t0, deletedAt: t0) == nil)
    }
}
