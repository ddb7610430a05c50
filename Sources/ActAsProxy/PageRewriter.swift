import ActAsHTTP
import CompressNIO
import Foundation
import NIOCore

/// The response side of the banner (SPEC §7): an HTML page, gzip- or deflate-decoded if it
/// came compressed, with the banner inserted once after its opening `<body>` tag. Streams:
/// each piece goes out as it arrives (the injector holds back at most a partial tag), so
/// memory stays bounded however long the page is. The page leaves uncompressed.
///
/// Two limits keep a hostile page from costing memory or slipping past the banner:
/// - at most `maxInflated` decoded bytes (`limits.max_rewritten_page`): past it the page is
///   a decompression bomb and `feed` throws `Failure.tooLarge`;
/// - on a navigation (`refuseUndecorated`), nothing leaves until the injector has decided
///   (banner placed, or a frameset or UTF-16 document that can never have one): such a
///   document is refused (`Failure.undecoratable`) before any byte of it is sent. What is
///   held meanwhile is bounded by `maxHeld`; past it the page streams, and a later refusal
///   can only cut the response.
struct PageRewriter {
    private var injector: HTMLBodyInjector
    private var inflater: ZlibDecompressor?
    /// A deflate body whose first bytes are still needed to tell zlib from raw deflate.
    private var deflatePrefix: ByteBuffer?
    private let maxInflated: Int
    private var inflated = 0
    private let refuseUndecorated: Bool
    private var held: [ByteBuffer] = []
    private var heldBytes = 0
    /// True once output may leave (decided, or past `maxHeld`).
    private(set) var releasing: Bool

    /// Decompressed output is produced in pieces of this size.
    static let pieceSize = 32 * 1024
    /// Most a document's start is held back on a navigation waiting for the banner's place.
    static let maxHeld = 256 * 1024

    enum Failure: Error, Equatable {
        /// The compressed body is corrupt.
        case corruptEncoding
        /// More than `maxInflated` bytes decoded.
        case tooLarge
        /// The document can never show the banner (frameset, UTF-16).
        case undecoratable(HTMLBodyInjector.Refusal)

        /// The refusal code when nothing was sent yet.
        var code: String {
            self == .tooLarge ? "rewritten_page_too_large" : ResponseSanitizer.unrewritableCode
        }

        /// For the log's `detail`.
        func detail(limit: Int) -> String {
            switch self {
            case .corruptEncoding: return "the page's compressed body is corrupt"
            case .tooLarge: return "the page inflates to more than limits.max_rewritten_page (\(limit) bytes): cut"
            case .undecoratable(.frameset): return "a frameset page has no place for the banner"
            case .undecoratable(.utf16): return "a UTF-16 page (byte order mark) cannot carry the banner"
            }
        }
    }

    init(banner: ByteBuffer, coding: DocumentVerdict.ContentCoding, maxInflated: Int, refuseUndecorated: Bool) throws {
        injector = HTMLBodyInjector(insertion: banner)
        switch coding {
        case .identity: inflater = nil
        case .gzip: inflater = try ZlibDecompressor(algorithm: .gzip)
        case .deflate: deflatePrefix = ByteBuffer()
        }
        self.maxInflated = maxInflated
        self.refuseUndecorated = refuseUndecorated
        releasing = !refuseUndecorated
    }

    /// The next piece of the upstream body; appends what may be sent now.
    mutating func feed(_ chunk: ByteBuffer, allocator: ByteBufferAllocator, into output: inout [ByteBuffer]) throws {
        var input = chunk
        if var prefix = deflatePrefix {
            // RFC 9110 §8.4.1.2 says zlib, but servers also send raw deflate: a zlib header
            // is two bytes whose big-endian value is a multiple of 31 with method 8.
            deflatePrefix = nil
            prefix.writeBuffer(&input)
            guard prefix.readableBytes >= 2 else {
                deflatePrefix = prefix
                return
            }
            let cmf = prefix.getInteger(at: prefix.readerIndex, as: UInt8.self)!
            let flg = prefix.getInteger(at: prefix.readerIndex + 1, as: UInt8.self)!
            let zlib = cmf & 0x0F == 8 && (UInt16(cmf) << 8 | UInt16(flg)) % 31 == 0
            inflater = try ZlibDecompressor(algorithm: zlib ? .zlib : .deflate)
            input = prefix
        }
        guard let inflater else {
            try inject(chunk, into: &output)
            return
        }
        while input.readableBytes > 0 {
            var piece = allocator.buffer(capacity: Self.pieceSize)
            let before = input.readableBytes
            do {
                try inflater.inflate(from: &input, to: &piece)
            } catch let error as CompressNIOError where error == .bufferOverflow || error == .inputBufferOverflow {
                // The piece is full, or all input is used: both are progress.
            } catch {
                throw Failure.corruptEncoding
            }
            if piece.readableBytes > 0 {
                inflated += piece.readableBytes
                guard inflated <= maxInflated else { throw Failure.tooLarge }
                try inject(piece, into: &output)
            } else if input.readableBytes == before {
                break  // the compressed stream has ended: bytes after it are ignored
            }
        }
    }

    /// End of the body: whatever was held back, and the banner if the page never opened a body
    /// (a refusal would have been thrown by `feed`: the end decides only where the banner goes).
    mutating func finish(into output: inout [ByteBuffer]) {
        releasing = true
        output.append(contentsOf: held)
        held = []
        injector.finish(into: &output)
    }

    private mutating func inject(_ piece: ByteBuffer, into output: inout [ByteBuffer]) throws {
        if releasing, injector.isPassthrough {
            output.append(piece)
            return
        }
        var pieces: [ByteBuffer] = []
        injector.feed(piece, into: &pieces)
        try settle(pieces, into: &output)
    }

    /// Passes the injector's output on, or holds it until the injector has decided.
    private mutating func settle(_ pieces: [ByteBuffer], into output: inout [ByteBuffer]) throws {
        if refuseUndecorated, let refusal = injector.refusal { throw Failure.undecoratable(refusal) }
        if releasing {
            output.append(contentsOf: pieces)
            return
        }
        held.append(contentsOf: pieces)
        heldBytes += pieces.reduce(0) { $0 + $1.readableBytes }
        if injector.isPassthrough || heldBytes > Self.maxHeld {
            releasing = true
            output.append(contentsOf: held)
            held = []
        }
    }
}
