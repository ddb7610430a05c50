import ActAsHTTP
import Foundation
import NIOCore
import Testing
import CompressNIO

@testable import ActAsProxy

/// The banner rewriter's decoding, limits and holding, without a socket.
struct PageRewriterTests {
    let allocator = ByteBufferAllocator()
    let page = Array("<!doctype html><html><head><title>t</title></head><body><p>data</p></body></html>".utf8)

    func run(_ rewriter: inout PageRewriter, _ chunks: [[UInt8]]) throws -> (String, [Int]) {
        var sent: [UInt8] = []
        var sizes: [Int] = []
        for chunk in chunks {
            var output: [ByteBuffer] = []
            try rewriter.feed(ByteBuffer(bytes: chunk), allocator: allocator, into: &output)
            sizes.append(output.reduce(0) { $0 + $1.readableBytes })
            for piece in output { sent += piece.readableBytesView }
        }
        var output: [ByteBuffer] = []
        rewriter.finish(into: &output)
        for piece in output { sent += piece.readableBytesView }
        return (String(decoding: sent, as: UTF8.self), sizes)
    }

    func rewriter(_ coding: DocumentVerdict.ContentCoding, max: Int = 1 << 20, navigation: Bool = true) throws -> PageRewriter {
        try PageRewriter(banner: ByteBuffer(string: "[B]"), coding: coding, maxInflated: max, refuseUndecorated: navigation)
    }

    func compress(_ bytes: [UInt8], _ algorithm: CompressionAlgorithm) throws -> [UInt8] {
        var input = ByteBuffer(bytes: bytes)
        return Array(try input.compress(with: algorithm).readableBytesView)
    }

    @Test(arguments: [true, false])
    func deflateZlibAndRawAreDecoded(zlib: Bool) throws {
        let compressed = try compress(page, zlib ? .zlib() : .deflate())
        for split in [1, 2, 3, compressed.count / 2] {  // the zlib header may arrive a byte at a time
            var r = try rewriter(.deflate)
            let (text, _) = try run(&r, [Array(compressed[..<split]), Array(compressed[split...])])
            #expect(text == "<!doctype html><html><head><title>t</title></head><body>[B]<p>data</p></body></html>", "split \(split)")
        }
    }

    @Test func inflatingPastTheLimitThrows() throws {
        let bomb = try compress(Array("<html><body>".utf8) + [UInt8](repeating: 0x20, count: 4 << 20), .gzip())
        #expect(bomb.count < 8 * 1024)
        var r = try rewriter(.gzip, max: 1 << 20, navigation: false)
        #expect(throws: PageRewriter.Failure.tooLarge) { _ = try run(&r, [bomb]) }
        var roomy = try rewriter(.gzip, max: 8 << 20, navigation: false)
        let (text, _) = try run(&roomy, [bomb])
        #expect(text.count == (4 << 20) + 12 + 3)
    }

    @Test func corruptCompressionThrows() throws {
        var r = try rewriter(.gzip)
        #expect(throws: PageRewriter.Failure.corruptEncoding) { _ = try run(&r, [Array("not gzip at all".utf8)]) }
    }

    @Test func aNavigationHoldsItsStartUntilTheBannerHasAPlace() throws {
        var r = try rewriter(.identity)
        let (text, sizes) = try run(&r, [Array("<html><head><title>".utf8), Array("t</title></head>".utf8), Array("<body>x".utf8)])
        #expect(sizes[0] == 0 && sizes[1] == 0 && sizes[2] > 0)
        #expect(text == "<html><head><title>t</title></head><body>[B]x")
    }

    @Test func framesetAndUTF16AreRefusedBeforeAnythingLeaves() throws {
        var frames = try rewriter(.identity)
        #expect(throws: PageRewriter.Failure.undecoratable(.frameset)) {
            _ = try run(&frames, [Array("<html><head></head>".utf8), Array("<frameset><frame src=a></frameset>".utf8)])
        }
        var wide = try rewriter(.identity)
        #expect(throws: PageRewriter.Failure.undecoratable(.utf16)) { _ = try run(&wide, [[0xFF, 0xFE, 0x3C, 0x00]]) }
        // Not a navigation: passed as before, without a banner.
        var fetched = try rewriter(.identity, navigation: false)
        let (text, _) = try run(&fetched, [Array("<frameset></frameset>".utf8)])
        #expect(text == "<frameset></frameset>")
    }

    @Test func aHugeHeadIsNotHeldForever() throws {
        var r = try rewriter(.identity)
        let head = Array("<html><head><script>".utf8) + [UInt8](repeating: 0x61, count: PageRewriter.maxHeld + 1)
        let (_, sizes) = try run(&r, [head, Array("</script></head><body>".utf8)])
        #expect(sizes[0] > PageRewriter.maxHeld)
    }

    @Test func endOfAPageWithoutBodyReleasesWhatWasHeld() throws {
        var r = try rewriter(.identity)
        let (text, sizes) = try run(&r, [Array("<html><head><title>t</title>".utf8)])
        #expect(sizes == [0])
        #expect(text == "<html><head><title>t</title>[B]")
    }
}

struct CookieJarTests {
    @Test func proxyOwnedAndInvalidNamesAreRefused() {
        let jar = CookieJar()
        let now = Date()
        for owned in ["__Host-actas_session=x; Path=/", "__host-ACTAS_login=y", "__Secure-actas_oidc=z", "actas_session=1",
                      " __Host-actas_session =w", "__Host-actas_session"] {
            #expect(jar.store(owned, requestPath: "/", now: now) == .refusedProxyOwned, "\(owned)")
        }
        for invalid in ["bad name=1", "a\"b=1", "=nameless", "noequals", "a(b)=2", "a\u{1}b=3", "ok=a\u{1}b"] {
            #expect(jar.store(invalid, requestPath: "/", now: now) == .refusedInvalidName, "\(invalid)")
        }
        #expect(jar.store("keep=1; Path=/; HttpOnly", requestPath: "/", now: now) == .stored(passToBrowser: false))
        #expect(jar.store("XSRF-TOKEN=abc", requestPath: "/", now: now) == .stored(passToBrowser: true))
        #expect(jar.header(for: "/", now: now) == "keep=1; XSRF-TOKEN=abc")
    }
}
