import Foundation
import Synchronization
import Testing

@testable import ActAsAudit

// MARK: - An independent SHA-256 (FIPS 180-4), so chain checks do not reuse the module's hashing.

enum ReferenceSHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ message: [UInt8]) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var data = message
        let bitLength = UInt64(message.count) * 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        var w = [UInt32](repeating: 0, count: 64)
        for block in stride(from: 0, to: data.count, by: 64) {
            for t in 0..<16 {
                let i = block + t * 4
                w[t] = UInt32(data[i]) << 24 | UInt32(data[i + 1]) << 16 | UInt32(data[i + 2]) << 8 | UInt32(data[i + 3])
            }
            for t in 16..<64 {
                let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
                let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
                w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for t in 0..<64 {
                let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ k[t] &+ w[t]
                let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            h[0] = h[0] &+ a; h[1] = h[1] &+ b; h[2] = h[2] &+ c; h[3] = h[3] &+ d
            h[4] = h[4] &+ e; h[5] = h[5] &+ f; h[6] = h[6] &+ g; h[7] = h[7] &+ hh
        }
        return h.map { String(format: "%08x", $0) }.joined()
    }
}

/// Re-derives a line's hash the way the SPEC tells a stranger to: find the final `,"hash":"…"`
/// member, drop it (keeping the closing `}`), prepend `prev + "\n"`, SHA-256, hex.
func referenceHash(ofLine line: String) throws -> (computed: String, stored: String, prev: String) {
    let bytes = Array(line.utf8)
    let marker = Array(#","hash":""#.utf8)
    var cut: Int?
    var index = bytes.count - marker.count
    while index >= 0 {
        if Array(bytes[index..<index + marker.count]) == marker {
            cut = index
            break
        }
        index -= 1
    }
    let position = try #require(cut)
    let stored = String(decoding: bytes[(position + marker.count)..<(bytes.count - 2)], as: UTF8.self)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    let prev = try #require(object["prev"] as? String)
    let lineWithoutHash = Array(bytes[0..<position]) + Array("}".utf8)
    return (ReferenceSHA256.hex(Array(prev.utf8) + [0x0A] + lineWithoutHash), stored, prev)
}

// MARK: - gzip by hand (the test target does not link zlib itself)

enum TestGzip {
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var table = [UInt32](repeating: 0, count: 256)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            table[n] = c
        }
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    private static let header: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xFF]

    private static func trailer(crc: UInt32, size: UInt32) -> [UInt8] {
        [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24),
         UInt8(size & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 24)]
    }

    /// A valid gzip member using stored (uncompressed) deflate blocks.
    static func stored(_ data: [UInt8]) -> [UInt8] {
        var out = header
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            let final: UInt8 = offset + length == data.count ? 1 : 0
            out.append(final)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += data[offset..<offset + length]
            offset += length
        } while offset < data.count
        return out + trailer(crc: crc32(data), size: UInt32(truncatingIfNeeded: data.count))
    }

    /// A gzip bomb: one fixed-Huffman block of a zero byte followed by `repeats` matches of
    /// length 258 at distance 1 (13 bits each → ~160:1).
    static func bomb(repeats: Int) -> (gzip: [UInt8], inflatedSize: Int) {
        var out = header
        var bitBuffer: UInt32 = 0
        var bitCount = 0
        func bits(_ value: UInt32, _ count: Int) {  // LSB first
            bitBuffer |= value << UInt32(bitCount)
            bitCount += count
            while bitCount >= 8 {
                out.append(UInt8(bitBuffer & 0xFF))
                bitBuffer >>= 8
                bitCount -= 8
            }
        }
        func huffman(_ code: UInt32, _ length: Int) {  // Huffman codes go MSB first
            var reversed: UInt32 = 0
            for i in 0..<length where code & (1 << UInt32(i)) != 0 { reversed |= 1 << UInt32(length - 1 - i) }
            bits(reversed, length)
        }
        bits(1, 1)  // BFINAL
        bits(1, 2)  // BTYPE = 01 (fixed Huffman)
        huffman(0x30, 8)  // literal 0
        for _ in 0..<repeats {
            huffman(0xC5, 8)  // length code 285 = 258
            huffman(0, 5)  // distance code 0 = 1
        }
        huffman(0, 7)  // end of block
        if bitCount > 0 { out.append(UInt8(bitBuffer & 0xFF)) }
        let size = 1 + 258 * repeats
        // CRC of `size` zero bytes, computed without allocating them all.
        var table = [UInt32](repeating: 0, count: 256)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            table[n] = c
        }
        var crc: UInt32 = 0xFFFF_FFFF
        for _ in 0..<size { crc = table[Int(crc & 0xFF)] ^ (crc >> 8) }
        return (out + trailer(crc: crc ^ 0xFFFF_FFFF, size: UInt32(truncatingIfNeeded: size)), size)
    }
}

// MARK: - Helpers

let defaultRedactor = Redactor(
    redactKeys: Redactor.defaultRedactKeys, redactHeaders: Redactor.defaultRedactHeaders, bodyCaptureBytes: 8192)

/// Encodes one record as seq 1 after the genesis hash and returns the line without `\n`.
func encodeLine(_ record: AuditRecord, redactor: Redactor = defaultRedactor, instance: String? = nil, seq: UInt64 = 1, prev: AuditHash = .genesis) -> String {
    var out: [UInt8] = []
    AuditLineEncoder(redactor: redactor, instance: instance).encode(record, seq: seq, prev: prev, into: &out)
    #expect(out.last == 0x0A)
    return String(decoding: out.dropLast(), as: UTF8.self)
}

func parseObject(_ line: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}

/// Key names of the top-level object in written order.
func topLevelKeys(_ line: String) throws -> [String] {
    let value = try #require(AuditLogEntry(line: line))
    return try #require(value.fields.members).map(\.key)
}

final class TemporaryDirectory {
    let path: String

    init() {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/actas-audit-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func file(_ name: String) -> String { path + "/" + name }
}

func readLines(_ path: String) -> [String] {
    guard let data = FileManager.default.contents(atPath: path) else { return [] }
    return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
}

func writeLines(_ lines: [String], to path: String, trailingNewline: Bool = true) {
    let text = lines.joined(separator: "\n") + (trailingNewline && !lines.isEmpty ? "\n" : "")
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
}

/// Collects completion results from any thread.
final class Collected<Value: Sendable>: Sendable {
    private let storage = Mutex<[Value]>([])
    private let semaphore = DispatchSemaphore(value: 0)

    func add(_ value: Value) {
        storage.withLock { $0.append(value) }
        semaphore.signal()
    }

    var values: [Value] { storage.withLock { $0 } }

    /// Waits for `count` more values (10 s at most each).
    func wait(for count: Int) -> Bool {
        for _ in 0..<count where semaphore.wait(timeout: .now() + 10) == .timedOut { return false }
        return true
    }
}

func sampleRequest(_ index: Int = 0) -> AuditRecord {
    AuditRecord(
        type: .request, timestamp: AuditTimestamp(millisecondsSinceEpoch: 1_793_960_123_123 + Int64(index)),
        requestID: "req_\(index)", clientIP: "192.0.2.10", method: "GET", path: "/api/items/\(index)",
        query: "page=2", status: 200, durationNanoseconds: 3_200_000, upstreamNanoseconds: 2_100_000,
        bytesIn: 120, bytesOut: 55, user: "jdoe")
}
