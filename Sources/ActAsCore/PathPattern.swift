/// A path pattern from `proxy.conf` (`public_paths`, `hidden_paths`): literal bytes where `*`
/// matches any run of characters, `/` included (SPEC §4).
public struct PathPattern: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    private let pieces: [[UInt8]]
    private let caseSensitive: Bool

    public init(_ text: String, caseSensitive: Bool = true) {
        self.text = text
        self.caseSensitive = caseSensitive
        let bytes = Array(text.utf8)
        self.pieces = bytes.split(separator: UInt8(ascii: "*"), omittingEmptySubsequences: false).map {
            caseSensitive ? Array($0) : $0.map(asciiLower)
        }
    }

    public var description: String { text }

    public func matches(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { matches(UnsafeRawBufferPointer($0)) }
    }

    /// Glob match with `*` only: anchored at both ends, greedy-safe by trying the leftmost
    /// position for each middle piece (correct for `*`-only globs).
    public func matches(_ path: UnsafeRawBufferPointer) -> Bool {
        @inline(__always) func byte(_ i: Int) -> UInt8 { caseSensitive ? path[i] : asciiLower(path[i]) }
        @inline(__always) func matchesAt(_ piece: [UInt8], _ start: Int) -> Bool {
            guard start + piece.count <= path.count else { return false }
            for (offset, expected) in piece.enumerated() where byte(start + offset) != expected { return false }
            return true
        }
        guard let first = pieces.first else { return path.isEmpty }
        if pieces.count == 1 { return path.count == first.count && matchesAt(first, 0) }
        guard matchesAt(first, 0) else { return false }
        var position = first.count
        for piece in pieces.dropFirst().dropLast() where !piece.isEmpty {
            var found = false
            var start = position
            while start + piece.count <= path.count {
                if matchesAt(piece, start) {
                    found = true
                    break
                }
                start += 1
            }
            guard found else { return false }
            position = start + piece.count
        }
        let last = pieces[pieces.count - 1]
        guard path.count - position >= last.count else { return false }
        return matchesAt(last, path.count - last.count)
    }
}

@inline(__always)
func asciiLower(_ byte: UInt8) -> UInt8 { (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte }
