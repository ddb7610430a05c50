import ActAsCore
import Crypto
import Foundation

/// Signs and checks the request log's checkpoints (SPEC §10.6) with the assertion key ring:
/// ES256 over `covers + "." + head + "." + instance`, the signature as JWS does it (R ‖ S,
/// 64 bytes, base64url without padding).
public enum CheckpointSigner {
    public enum SignError: Error { case noPrivateKey }

    /// What checking one checkpoint's signature found.
    public enum Verdict: Sendable, Equatable {
        case valid
        /// No key of the ring (or JWKS) has this `kid`.
        case unknownKey
        /// The key is known; `sig` is not its valid ES256 signature of the signing input
        /// (including a `sig` that is not 64 bytes of base64url).
        case badSignature
    }

    /// `kid` and `sig` for a checkpoint of record `covers` with hash `head`, signed by `instance`.
    public static func sign(covers: UInt64, head: String, instance: String, with key: AssertionKey) throws
        -> (kid: String, sig: String)
    {
        guard let privateKey = key.privateKey else { throw SignError.noPrivateKey }
        let input = AuditCheckpoint.signingInput(covers: covers, head: head, instance: instance)
        let signature = try privateKey.signature(for: input)
        // ECDSA's raw representation in swift-crypto is exactly JWS's r ‖ s (32 bytes each).
        return (key.kid, Base64URL.encode(signature.rawRepresentation))
    }

    /// Checks the checkpoint's signature against `keys` (public keys suffice).
    public static func verify(_ checkpoint: AuditCheckpoint, keys: [AssertionKey]) -> Verdict {
        verify(covers: checkpoint.covers, head: checkpoint.head, instance: checkpoint.instance,
               kid: checkpoint.kid, sig: checkpoint.sig, keys: keys)
    }

    public static func verify(covers: UInt64, head: String, instance: String, kid: String, sig: String,
                              keys: [AssertionKey]) -> Verdict {
        guard let key = keys.first(where: { $0.kid == kid }) else { return .unknownKey }
        guard let raw = Base64URL.decode(sig), raw.count == 64,
              let signature = try? P256.Signing.ECDSASignature(rawRepresentation: raw)
        else { return .badSignature }
        let input = AuditCheckpoint.signingInput(covers: covers, head: head, instance: instance)
        return key.publicKey.isValidSignature(signature, for: input) ? .valid : .badSignature
    }
}

extension AssertionKey {
    /// A verify-only key (no private part), e.g. from a published JWKS.
    public init(publicKey: P256.Signing.PublicKey) {
        self.privateKey = nil
        self.publicKey = publicKey
        self.kid = Self.thumbprint(publicKey)
    }

    /// The P-256 keys of a JWKS document (`{"keys":[…]}`, as `/.well-known/actas/jwks.json`
    /// publishes it). Keys of other types or curves are skipped. The `kid` is recomputed as the
    /// RFC 7638 thumbprint (what the ring signs with); a key whose stated `kid` differs is skipped,
    /// so a JWKS cannot map a kid to another key. Nil when the document is not a JWKS.
    public static func keys(fromJWKS data: Data) -> [AssertionKey]? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let entries = object["keys"] as? [Any]
        else { return nil }
        var keys: [AssertionKey] = []
        for case let entry as [String: Any] in entries {
            guard entry["kty"] as? String == "EC", entry["crv"] as? String == "P-256",
                  let x = (entry["x"] as? String).flatMap(Base64URL.decode), x.count == 32,
                  let y = (entry["y"] as? String).flatMap(Base64URL.decode), y.count == 32,
                  let publicKey = try? P256.Signing.PublicKey(rawRepresentation: x + y)
            else { continue }
            let key = AssertionKey(publicKey: publicKey)
            if let stated = entry["kid"] as? String, stated != key.kid { continue }
            keys.append(key)
        }
        return keys
    }
}
