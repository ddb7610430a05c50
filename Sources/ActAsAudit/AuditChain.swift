import ActAsCore
import Crypto

/// A record's `hash` (and the next record's `prev`): 32 bytes, written as 64 lower-case hex digits.
public struct AuditHash: Sendable, Hashable, CustomStringConvertible {
    /// The raw digest. A tuple keeps it inline (no allocation per record).
    private var storage: (UInt64, UInt64, UInt64, UInt64)

    /// The first record's `prev`: 64 zeros.
    public static let genesis = AuditHash(storage: (0, 0, 0, 0))

    private init(storage: (UInt64, UInt64, UInt64, UInt64)) {
        self.storage = storage
    }

    init(digest: SHA256.Digest) {
        var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &storage) { target in
            digest.withUnsafeBytes { source in target.copyMemory(from: source) }
        }
        self.storage = storage
    }

    /// From 64 lower-case hex digits.
    public init?(hex: String) {
        self.init(hexBytes: Array(hex.utf8))
    }

    init?<Bytes: Collection<UInt8>>(hexBytes: Bytes) {
        guard hexBytes.count == 64 else { return nil }
        var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &storage) { target -> Bool in
            var iterator = hexBytes.makeIterator()
            for position in 0..<32 {
                guard let high = iterator.next().flatMap(Self.lowerHexValue),
                    let low = iterator.next().flatMap(Self.lowerHexValue)
                else { return false }
                target[position] = high << 4 | low
            }
            return true
        }
        guard ok else { return nil }
        self.storage = storage
    }

    private static func lowerHexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    public var hex: String {
        withHexBytes { String(decoding: $0, as: UTF8.self) }
    }

    public var description: String { hex }

    /// Calls `body` with the 64 hex digits, followed by `\n` when `newline` (the start of the
    /// next record's hash input: `prev + "\n"`).
    func withHexBytes<T>(newline: Bool = false, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &text) { target in
            // The digest's bytes in order: each word read as big-endian puts its first byte first.
            LowerHex.store(UInt64(bigEndian: storage.0), to: target.baseAddress!)
            LowerHex.store(UInt64(bigEndian: storage.1), to: target.baseAddress! + 16)
            LowerHex.store(UInt64(bigEndian: storage.2), to: target.baseAddress! + 32)
            LowerHex.store(UInt64(bigEndian: storage.3), to: target.baseAddress! + 48)
            target[64] = UInt8(ascii: "\n")
            return body(UnsafeRawBufferPointer(rebasing: target[0..<(newline ? 65 : 64)]))
        }
    }

    public static func == (lhs: AuditHash, rhs: AuditHash) -> Bool {
        lhs.storage.0 == rhs.storage.0 && lhs.storage.1 == rhs.storage.1 && lhs.storage.2 == rhs.storage.2
            && lhs.storage.3 == rhs.storage.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
        hasher.combine(storage.2)
        hasher.combine(storage.3)
    }
}

/// The chain rule of SPEC §8: `hash = SHA-256(prev + "\n" + L)`, where `prev` is the previous
/// record's hash as 64 hex digits and `L` the line without its final `,"hash":"…"` member.
public enum AuditChain {
    /// Hashes `L` (which must end in `}` and contain the `prev` member) chained to `prev`.
    public static func hash(prev: AuditHash, lineWithoutHash: UnsafeRawBufferPointer) -> AuditHash {
        prev.withHexBytes(newline: true) { hash(prevHexAndNewline: $0, lineWithoutHash: lineWithoutHash) }
    }

    /// The same from `prev + "\n"` as it is written (`AuditHash.withHexBytes(newline: true)`):
    /// two updates of the digest instead of three, each of which costs about 30 ns.
    static func hash(prevHexAndNewline: UnsafeRawBufferPointer, lineWithoutHash: UnsafeRawBufferPointer) -> AuditHash {
        var hasher = SHA256()
        hasher.update(bufferPointer: prevHexAndNewline)
        hasher.update(bufferPointer: lineWithoutHash)
        return AuditHash(digest: hasher.finalize())
    }

    public static func hash(prev: AuditHash, lineWithoutHash: [UInt8]) -> AuditHash {
        lineWithoutHash.withUnsafeBytes { hash(prev: prev, lineWithoutHash: $0) }
    }

    /// The suffix every line ends with: `,"hash":"` + 64 hex digits + `"}` (75 bytes).
    static let hashMemberPrefix: [UInt8] = Array(#","hash":""#.utf8)
    static let hashSuffixLength = hashMemberPrefix.count + 64 + 2
}
