import Foundation

/// A signed checkpoint of the request log (SPEC §10.6): "the record numbered `covers` has hash
/// `head`", signed by `instance` with the assertion key `kid`. It is written into the log as a
/// record of its own (numbered `seq`, chained like any record) and a copy is kept in the store,
/// so a log cut before the store's last checkpoint, or rewritten with a fresh chain, shows.
public struct AuditCheckpoint: Sendable, Equatable {
    /// The checkpoint record's own `seq` (the `S` of `checkpoint S: …` messages).
    public var seq: UInt64
    /// The seq of the last record before the checkpoint, whose hash `head` is.
    public var covers: UInt64
    /// That record's `hash`: 64 lower-case hex digits.
    public var head: String
    /// `listen.instance_id` (resolved) of the instance that wrote the log.
    public var instance: String
    /// RFC 7638 thumbprint of the assertion key that signed.
    public var kid: String
    /// base64url (no padding) of the 64-byte ES256 signature R ‖ S over `signingInput`.
    public var sig: String
    /// The checkpoint record's `ts`.
    public var timestamp: Date

    public init(seq: UInt64, covers: UInt64, head: String, instance: String, kid: String, sig: String, timestamp: Date) {
        self.seq = seq
        self.covers = covers
        self.head = head
        self.instance = instance
        self.kid = kid
        self.sig = sig
        self.timestamp = timestamp
    }

    /// Exactly the bytes that are signed: `covers + "." + head + "." + instance` (decimal
    /// `covers`, UTF-8).
    public var signingInput: [UInt8] { Self.signingInput(covers: covers, head: head, instance: instance) }

    public static func signingInput(covers: UInt64, head: String, instance: String) -> [UInt8] {
        Array("\(covers).\(head).\(instance)".utf8)
    }
}
