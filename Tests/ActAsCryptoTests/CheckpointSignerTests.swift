import ActAsCore
import Crypto
import Foundation
import Testing
@testable import ActAsCrypto

private let head = String(repeating: "ab", count: 32)

@Suite("Checkpoint signatures (SPEC §10.6)")
struct CheckpointSignerTests {
    @Test func signsExactlyCoversDotHeadDotInstanceAsJWSStyleRS() throws {
        let key = AssertionKey.generate().key
        let (kid, sig) = try CheckpointSigner.sign(covers: 1042, head: head, instance: "edge-1", with: key)
        #expect(kid == key.kid)
        // base64url without padding of 64 bytes: 86 characters of the URL-safe alphabet.
        #expect(sig.count == 86)
        #expect(sig.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        let raw = try #require(Base64URL.decode(sig))
        #expect(raw.count == 64)
        // Checked with swift-crypto directly over the literal signing input.
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: raw)
        #expect(key.publicKey.isValidSignature(signature, for: Array("1042.\(head).edge-1".utf8)))
        #expect(AuditCheckpoint.signingInput(covers: 1042, head: head, instance: "edge-1") == Array("1042.\(head).edge-1".utf8))
    }

    @Test func verifiesWhatItSignedAndNothingElse() throws {
        let key = AssertionKey.generate().key
        let (kid, sig) = try CheckpointSigner.sign(covers: 7, head: head, instance: "a", with: key)
        let checkpoint = AuditCheckpoint(seq: 8, covers: 7, head: head, instance: "a", kid: kid, sig: sig, timestamp: Date())
        #expect(CheckpointSigner.verify(checkpoint, keys: [key]) == .valid)

        var changed = checkpoint
        changed.covers = 6
        #expect(CheckpointSigner.verify(changed, keys: [key]) == .badSignature)
        changed = checkpoint
        changed.head = String(repeating: "ab", count: 31) + "ac"
        #expect(CheckpointSigner.verify(changed, keys: [key]) == .badSignature)
        changed = checkpoint
        changed.instance = "b"
        #expect(CheckpointSigner.verify(changed, keys: [key]) == .badSignature)
        // "7.<head>.a" must not verify as covers 7 with head+instance shifted across the dots.
        changed = checkpoint
        changed.seq = 99  // the record's own seq is not signed
        #expect(CheckpointSigner.verify(changed, keys: [key]) == .valid)
    }

    @Test func unknownKidAndMalformedSignaturesAreReported() throws {
        let key = AssertionKey.generate().key
        let other = AssertionKey.generate().key
        let (kid, sig) = try CheckpointSigner.sign(covers: 1, head: head, instance: "a", with: key)
        var checkpoint = AuditCheckpoint(seq: 2, covers: 1, head: head, instance: "a", kid: kid, sig: sig, timestamp: Date())
        #expect(CheckpointSigner.verify(checkpoint, keys: [other]) == .unknownKey)
        #expect(CheckpointSigner.verify(checkpoint, keys: []) == .unknownKey)
        // Another key claiming this kid: the signature does not verify.
        checkpoint.sig = try CheckpointSigner.sign(covers: 1, head: head, instance: "a", with: other).sig
        #expect(CheckpointSigner.verify(checkpoint, keys: [key]) == .badSignature)
        for bad in ["", "AAAA", sig + "A", sig.dropLast() + "=", String(sig.dropLast(2)), sig.replacingOccurrences(of: "-", with: "+")] {
            checkpoint.sig = String(bad)
            if checkpoint.sig == sig { continue }
            #expect(CheckpointSigner.verify(checkpoint, keys: [key]) == .badSignature, "sig \(bad)")
        }
    }

    @Test func verifiesWithThePublishedJWKSAlone() throws {
        let signing = AssertionKey.generate().key
        let retired = AssertionKey.generate().key
        let ring = KeyRing(signing: signing, published: [retired])
        let keys = try #require(AssertionKey.keys(fromJWKS: Data(ring.jwksJSON)))
        #expect(keys.map(\.kid) == [signing.kid, retired.kid])
        #expect(keys.allSatisfy { $0.privateKey == nil })
        for key in [signing, retired] {
            let (kid, sig) = try CheckpointSigner.sign(covers: 3, head: head, instance: "i", with: key)
            #expect(CheckpointSigner.verify(covers: 3, head: head, instance: "i", kid: kid, sig: sig, keys: keys) == .valid)
        }
        #expect(throws: CheckpointSigner.SignError.self) {
            _ = try CheckpointSigner.sign(covers: 3, head: head, instance: "i", with: keys[0])
        }
    }

    @Test func aJWKSCannotBindAKidToAnotherKey() throws {
        let real = AssertionKey.generate().key
        let attacker = AssertionKey.generate().key
        var jwk = attacker.jwk
        jwk["kid"] = real.kid
        let document = try JSONSerialization.data(withJSONObject: ["keys": [jwk, ["kty": "RSA", "n": "x", "e": "AQAB"]]])
        #expect(AssertionKey.keys(fromJWKS: document)?.isEmpty == true)
        #expect(AssertionKey.keys(fromJWKS: Data("[]".utf8)) == nil)
        #expect(AssertionKey.keys(fromJWKS: Data("not json".utf8)) == nil)
    }
}
