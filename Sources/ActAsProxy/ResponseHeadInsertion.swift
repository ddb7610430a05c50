import NIOCore

/// Puts a header line into the first final response head of a connection's outbound bytes
/// (the mTLS sign-in's `Set-Cookie`, ClientCertificateHandler). Pure, so the cases below are
/// unit-tested without a socket. The proxy writes every response head whole in one buffer,
/// interim `1xx` heads (`100 Continue`) before it, separately or in the same buffer.
enum ResponseHeadInsertion {
    enum Outcome: Equatable {
        /// The bytes with the line after the final head's status line.
        case inserted(ByteBuffer)
        /// Only whole interim heads so far: the final head is still to come.
        case notYet
        /// `101 Switching Protocols` or bytes that are not an HTTP/1.x head: nothing to insert into.
        case never
    }

    static func insert(_ line: String, into buffer: ByteBuffer) -> Outcome {
        let bytes = Array(buffer.readableBytesView)
        var offset = 0
        while true {
            guard offset + 12 <= bytes.count, bytes[offset..<(offset + 7)].elementsEqual("HTTP/1.".utf8),
                  bytes[offset + 8] == UInt8(ascii: " "),
                  let status = Self.status(bytes[(offset + 9)..<(offset + 12)])
            else { return offset > 0 && offset == bytes.count ? .notYet : .never }
            if status == 101 { return .never }
            if status < 200 {
                guard let end = Self.find([13, 10, 13, 10], in: bytes, from: offset) else { return .never }
                offset = end + 4
                if offset == bytes.count { return .notYet }
                continue
            }
            guard let lineEnd = Self.find([13, 10], in: bytes, from: offset) else { return .never }
            var out = ByteBuffer()
            out.reserveCapacity(bytes.count + line.utf8.count)
            out.writeBytes(bytes[..<(lineEnd + 2)])
            out.writeString(line)
            out.writeBytes(bytes[(lineEnd + 2)...])
            return .inserted(out)
        }
    }

    static func status(_ digits: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }

    static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= bytes.count {
            if bytes[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}
