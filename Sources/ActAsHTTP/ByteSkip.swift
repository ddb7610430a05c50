/// Fast skips for HTMLBodyScanner: SWAR, 8 bytes at a time.
enum ByteSkip {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Nonzero in the high bit of the first byte of `word` that is zero (exact for the lowest one).
    @inline(__always)
    static func zeroBytes(_ word: UInt64) -> UInt64 {
        (word &- ones) & ~word & highs
    }

    /// Index of the first `target` at or after `start`, or `bytes.count`.
    @inline(__always)
    static func index(of target: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var i = start
        let n = bytes.count
        if n &- i >= 8, let base = bytes.baseAddress {
            let pattern = UInt64(target) &* ones
            while i &+ 8 <= n {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                let hits = zeroBytes(word ^ pattern)
                if hits != 0 { return i &+ hits.trailingZeroBitCount &>> 3 }
                i &+= 8
            }
        }
        while i < n {
            if bytes[i] == target { return i }
            i &+= 1
        }
        return n
    }

    /// Index of the first `a` or `b` at or after `start`, or `bytes.count`.
    @inline(__always)
    static func index(of a: UInt8, or b: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var i = start
        let n = bytes.count
        if n &- i >= 8, let base = bytes.baseAddress {
            let patternA = UInt64(a) &* ones
            let patternB = UInt64(b) &* ones
            while i &+ 8 <= n {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                let hits = zeroBytes(word ^ patternA) | zeroBytes(word ^ patternB)
                if hits != 0 { return i &+ hits.trailingZeroBitCount &>> 3 }
                i &+= 8
            }
        }
        while i < n {
            let c = bytes[i]
            if c == a || c == b { return i }
            i &+= 1
        }
        return n
    }
}
