import ActAsHTTP
import CompressNIO
import Foundation
import NIOCore

/// The response side of the banner (SPEC §7): an HTML page, gzip-decoded if it came
/// compressed, with the banner inserted once after its opening `<body>` tag. Streams: each
/// piece goes out as it arrives (the injector holds back at most a partial tag), so memory
/// stays bounded however long the page is. The page leaves uncompressed.
struct PageRewriter {
    private var injector: HTMLBodyInjector
    private let inflater: ZlibDecompressor?

    /// Decompressed output is produced in pieces of this size.
    static let pieceSize = 32 * 1024

    init(banner: ByteBuffer, gzip: Bool) throws {
        injector = HTMLBodyInjector(insertion: banner)
        inflater = gzip ? try ZlibDecompressor(algorithm: .gzip) : nil
    }

    struct CorruptEncoding: Error {}

    /// The next piece of the upstream body; appends what may be sent now.
    mutating func feed(_ chunk: ByteBuffer, allocator: ByteBufferAllocator, into output: inout [ByteBuffer]) throws {
        guard let inflater else {
            injector.feed(chunk, into: &output)
            return
        }
        var input = chunk
        while input.readableBytes > 0 {
            var piece = allocator.buffer(capacity: Self.pieceSize)
            let before = input.readableBytes
            do {
                try inflater.inflate(from: &input, to: &piece)
            } catch let error as CompressNIOError where error == .bufferOverflow || error == .inputBufferOverflow {
                // The piece is full, or all input is used: both are progress.
            } catch {
                throw CorruptEncoding()
            }
            if piece.readableBytes > 0 {
                injector.feed(piece, into: &output)
            } else if input.readableBytes == before {
                break  // the gzip stream has ended: bytes after it are ignored
            }
        }
    }

    /// End of the body: whatever was held back, and the banner if the page never opened a body.
    mutating func finish(into output: inout [ByteBuffer]) {
        injector.finish(into: &output)
    }

    /// Whether a response should get the banner: an HTML page (not a fragment fetched by a
    /// script), with a body, in an encoding this can rewrite.
    static func applies(status: Int, contentType: String?, contentEncoding: String?, requestIsPageLoad: Bool, isHead: Bool, emptyBody: Bool) -> (Bool, gzip: Bool) {
        guard requestIsPageLoad, !isHead, !emptyBody, status >= 200, status != 204, status != 206, status != 304,
              let type = contentType?.lowercased(), type.hasPrefix("text/html") else { return (false, false) }
        // UTF-16/32 pages would need a transcoded banner; they pass through untouched.
        if type.contains("utf-16") || type.contains("utf-32") { return (false, false) }
        switch contentEncoding?.lowercased().trimmingCharacters(in: .whitespaces) {
        case nil, "", "identity": return (true, false)
        case "gzip", "x-gzip": return (true, true)
        default: return (false, false)
        }
    }
}
