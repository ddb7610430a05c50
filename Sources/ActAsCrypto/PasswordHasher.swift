import Crypto
import CryptoExtras
import Foundation

/// scrypt password hashes in PHC string format:
/// `$scrypt$ln=15,r=8,p=1$<salt base64>$<hash base64>` (base64 without padding).
/// Parameters are stored with each hash, so they can be raised later without breaking old ones.
public struct PasswordHasher: Sendable {
    /// log2 of scrypt's N. 15 → 32 MiB and tens of milliseconds per hash: sign-in is rate
    /// limited, not fast.
    public var logN: Int
    public var blockSize: Int
    public var parallelism: Int

    public static let standard = PasswordHasher(logN: 15, blockSize: 8, parallelism: 1)

    public init(logN: Int, blockSize: Int, parallelism: Int) {
        self.logN = logN
        self.blockSize = blockSize
        self.parallelism = parallelism
    }

    public enum HashError: Error, CustomStringConvertible {
        case empty
        case tooLong
        public var description: String {
            switch self {
            case .empty: return "the password must not be empty"
            case .tooLong: return "the password must be at most 1024 bytes"
            }
        }
    }

    public func hash(_ password: String) throws -> String {
        let bytes = Array(password.utf8)
        guard !bytes.isEmpty else { throw HashError.empty }
        guard bytes.count <= 1024 else { throw HashError.tooLong }
        let salt = Secrets.randomBytes(16)
        let key = try derive(bytes, salt: salt, logN: logN, r: blockSize, p: parallelism)
        return "$scrypt$ln=\(logN),r=\(blockSize),p=\(parallelism)$\(Self.b64(salt))$\(Self.b64(key))"
    }

    /// Constant-time check of a password against a stored hash; false for any malformed hash.
    public func verify(_ password: String, against stored: String) -> Bool {
        guard let parsed = Self.parse(stored) else { return false }
        let bytes = Array(password.utf8)
        guard !bytes.isEmpty, bytes.count <= 1024,
              let key = try? derive(bytes, salt: parsed.salt, logN: parsed.logN, r: parsed.r, p: parsed.p)
        else { return false }
        return constantTimeEquals(key, parsed.hash)
    }

    /// Burns the same time as a real check, so an unknown username is not faster to refuse.
    public func dummyVerify(_ password: String) {
        _ = try? derive(Array(password.utf8.prefix(1024)), salt: Array(repeating: 0, count: 16), logN: logN, r: blockSize, p: parallelism)
    }

    private func derive(_ password: [UInt8], salt: [UInt8], logN: Int, r: Int, p: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: password, salt: salt, outputByteCount: 32, rounds: 1 << logN, blockSize: r, parallelism: p)
        return key.withUnsafeBytes { Array($0) }
    }

    struct Parsed {
        var logN: Int
        var r: Int
        var p: Int
        var salt: [UInt8]
        var hash: [UInt8]
    }

    static func parse(_ stored: String) -> Parsed? {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "scrypt" else { return nil }
        var values: [String: Int] = [:]
        for pair in parts[2].split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let value = Int(kv[1]) else { return nil }
            values[String(kv[0])] = value
        }
        // Bounds keep a hostile hash (e.g. written into the store) from asking for gigabytes
        // or minutes: at most 256 MiB (128·N·r bytes) and parallelism 4.
        guard let logN = values["ln"], (10...20).contains(logN),
              let r = values["r"], (1...32).contains(r),
              let p = values["p"], (1...4).contains(p),
              128 * (1 << logN) * r <= 256 << 20,
              let salt = unb64(String(parts[3])), salt.count >= 8,
              let hash = unb64(String(parts[4])), hash.count >= 16
        else { return nil }
        return Parsed(logN: logN, r: r, p: p, salt: salt, hash: hash)
    }

    public static func isWellFormed(_ stored: String) -> Bool { parse(stored) != nil }

    static func b64(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    static func unb64(_ text: String) -> [UInt8]? {
        var padded = text
        while padded.utf8.count % 4 != 0 { padded += "=" }
        return Data(base64Encoded: padded).map { Array($0) }
    }
}
