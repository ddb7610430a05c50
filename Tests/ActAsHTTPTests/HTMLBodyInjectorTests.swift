import ActAsHTTP
import ActAsTestSupport
import NIOCore
import Testing

@Suite("HTML body injector")
struct HTMLBodyInjectorTests {
    static let marker = "⟦B⟧"
    static let markerBytes = Array(marker.utf8)

    /// (name, document, expected output: the document with `⟦B⟧` where the banner goes,
    /// or the document unchanged when nothing may be inserted).
    static let documents: [(String, String, String)] = [
        ("plain", "<html><head><title>x</title></head><body><p>hi</p></body></html>",
         "<html><head><title>x</title></head><body>⟦B⟧<p>hi</p></body></html>"),
        ("uppercase", "<HTML><HEAD><TITLE>x</TITLE></HEAD><BODY CLASS=main><P>hi</BODY>",
         "<HTML><HEAD><TITLE>x</TITLE></HEAD><BODY CLASS=main>⟦B⟧<P>hi</BODY>"),
        ("mixed case", "<Html><Head></Head><Body>x", "<Html><Head></Head><Body>⟦B⟧x"),
        ("quoted >", "<head></head><body data-x=\"a>b\" class='c>d'>x", "<head></head><body data-x=\"a>b\" class='c>d'>⟦B⟧x"),
        ("odd attributes", "<body\n\tid=main\n/ class = \"x\" data-y=a/b onload=f()>x",
         "<body\n\tid=main\n/ class = \"x\" data-y=a/b onload=f()>⟦B⟧x"),
        ("unquoted then quote", "<body a=b=\"c>d\">x", "<body a=b=\"c>⟦B⟧d\">x"),
        ("= starts a name", "<body =\"a>b\">", "<body =\"a>⟦B⟧b\">"),
        ("self-closing body", "<!doctype html><body/><p>", "<!doctype html><body/>⟦B⟧<p>"),
        ("body no head", "<body>", "<body>⟦B⟧"),
        ("comment before body", "<html><!-- <body> --><body>x", "<html><!-- <body> --><body>⟦B⟧x"),
        ("abrupt comment", "<!--><body>", "<!--><body>⟦B⟧"),
        ("short bogus comment", "<!->x<body>", "<!->⟦B⟧x<body>"),
        ("abrupt comment dash", "<!---><body>", "<!---><body>⟦B⟧"),
        ("bang comment end", "<!-- <body> --!><body>", "<!-- <body> --!><body>⟦B⟧"),
        ("comment dashes", "<!-- a -- b ---> <!----><body>", "<!-- a -- b ---> <!----><body>⟦B⟧"),
        ("nested comment open", "<!-- <!-- <body> --><body>", "<!-- <!-- <body> --><body>⟦B⟧"),
        ("script writes body", "<head><script>document.write(\"<body>\")</script></head><body>",
         "<head><script>document.write(\"<body>\")</script></head><body>⟦B⟧"),
        ("script not-quite end tags", "<head><script>if (a</scriptx>b) x</script >y</SCRIPT></head><body>",
         "<head><script>if (a</scriptx>b) x</script >⟦B⟧y</SCRIPT></head><body>"),
        ("script end tag with attributes", "<script>a</script foo=\">\"><body>", "<script>a</script foo=\">\"><body>⟦B⟧"),
        ("script escape", "<script><!-- </script><body>", "<script><!-- </script><body>⟦B⟧"),
        ("script double escape", "<script><!--<script>x</script>--></script><body>",
         "<script><!--<script>x</script>--></script><body>⟦B⟧"),
        ("script double escape uppercase", "<script><!--<SCRIPT>x</Script ><body>--></script>x",
         "<script><!--<SCRIPT>x</Script ><body>--></script>⟦B⟧x"),
        ("script escape dash", "<script><!-- a -</script><body>", "<script><!-- a -</script><body>⟦B⟧"),
        ("script escape dashes", "<script><!-- a --</script><body>", "<script><!-- a --</script><body>⟦B⟧"),
        ("script double escape dash", "<script><!--<script> -</script>x--></script><body>",
         "<script><!--<script> -</script>x--></script><body>⟦B⟧"),
        ("script escape closed early", "<script><!--> </script><body>", "<script><!--> </script><body>⟦B⟧"),
        ("template", "<template><body></template><body>", "<template><body></template><body>⟦B⟧"),
        ("nested template", "<template><template></template><body>text<div></template><body class=real>",
         "<template><template></template><body>text<div></template><body class=real>⟦B⟧"),
        ("template raw text", "<template><textarea></template><body></textarea></template><body>",
         "<template><textarea></template><body></textarea></template><body>⟦B⟧"),
        ("textarea opens body", "<textarea><body></textarea>", "⟦B⟧<textarea><body></textarea>"),
        ("title", "<title><body></title><body>", "<title><body></title><body>⟦B⟧"),
        ("title end tag needs a delimiter", "<title></titlex>text</title><body>", "<title></titlex>text</title><body>⟦B⟧"),
        ("title end variants", "<title>a</titlex></title\t></head><body>", "<title>a</titlex></title\t></head><body>⟦B⟧"),
        ("noscript", "<noscript><body></noscript><body>", "<noscript><body></noscript><body>⟦B⟧"),
        ("noframes", "<noframes><body></noframes><body>", "<noframes><body></noframes><body>⟦B⟧"),
        ("style", "<style>p>a{}</style><body>", "<style>p>a{}</style><body>⟦B⟧"),
        ("style with body", "<style>/* <body> */</style ><body>", "<style>/* <body> */</style ><body>⟦B⟧"),
        ("BOM doctype", "\u{FEFF}<!DOCTYPE html><html><body>", "\u{FEFF}<!DOCTYPE html><html><body>⟦B⟧"),
        ("BOM text", "\u{FEFF}hello", "\u{FEFF}⟦B⟧hello"),
        ("doctype then text", "<!DOCTYPE html>\nHello", "<!DOCTYPE html>\n⟦B⟧Hello"),
        ("doctype with >", "<!DOCTYPE html PUBLIC \"a>\"><body>", "<!DOCTYPE html PUBLIC \"a>⟦B⟧\"><body>"),
        ("implicit before div",
         "<!DOCTYPE html><html><head><title>t</title></head>\n<!-- c -->\n<div><body>",
         "<!DOCTYPE html><html><head><title>t</title></head>\n<!-- c -->\n⟦B⟧<div><body>"),
        ("div title", "<div title=\"<body>\">", "⟦B⟧<div title=\"<body>\">"),
        ("link title", "<link title=\"<body>\"><meta content='<body>'/><body>", "<link title=\"<body>\"><meta content='<body>'/><body>⟦B⟧"),
        ("only head", "<html><head><meta charset=utf-8></head>", "<html><head><meta charset=utf-8></head>⟦B⟧"),
        ("only head, whitespace", "<head></head>\n  \n", "<head></head>\n  \n⟦B⟧"),
        ("closing html", "<html><head></head></html>", "<html><head></head>⟦B⟧</html>"),
        ("closing body", "<head></head></body>", "<head></head>⟦B⟧</body>"),
        ("br end tag", "<head></br>", "<head>⟦B⟧</br>"),
        ("ignored end tags", "<head></p></headx></template></><body>", "<head></p></headx></template></><body>⟦B⟧"),
        ("empty", "", "⟦B⟧"),
        ("whitespace", " \n", " \n⟦B⟧"),
        ("body twice", "<body><body>", "<body>⟦B⟧<body>"),
        ("implicit then body", "<p>x<body>", "⟦B⟧<p>x<body>"),
        ("bodyx", "<bodyx><body>", "⟦B⟧<bodyx><body>"),
        ("body-foo", "<head><body-foo><body>", "<head>⟦B⟧<body-foo><body>"),
        ("long tag name", "<head><abcdefghijklmnop>", "<head>⟦B⟧<abcdefghijklmnop>"),
        ("text after head", "<head></head>  <!--c-->  text", "<head></head>  <!--c-->  ⟦B⟧text"),
        ("entity", "<head>&amp;", "<head>⟦B⟧&amp;"),
        ("lone <", "<head>< body>", "<head>⟦B⟧< body>"),
        ("bogus end tag", "<head></ body><body>", "<head></ body><body>⟦B⟧"),
        ("CDATA in HTML is a bogus comment", "<![CDATA[<body>]]><body>", "<![CDATA[<body>⟦B⟧]]><body>"),
        ("CDATA in svg in template", "<template><svg><![CDATA[ > </template> <body> ]]></svg></template><body>",
         "<template><svg><![CDATA[ > </template> <body> ]]></svg></template><body>⟦B⟧"),
        ("no CDATA after svg closed", "<template><svg></svg><![CDATA[ > </template><body>",
         "<template><svg></svg><![CDATA[ > </template><body>⟦B⟧"),
        ("self-closed svg", "<template><svg/><![CDATA[ > </template><body>",
         "<template><svg/><![CDATA[ > </template><body>⟦B⟧"),
        ("xml declaration", "<?xml version=\"1.0\"?><html><body>", "<?xml version=\"1.0\"?><html><body>⟦B⟧"),
        ("processing instruction", "<? <body> ?><body>", "<? <body> ⟦B⟧?><body>"),
        ("frameset", "<html><head></head><frameset cols=50%><frame src=a></frameset></html>",
         "<html><head></head><frameset cols=50%><frame src=a></frameset></html>"),
        ("plaintext", "<head><plaintext><body>", "<head>⟦B⟧<plaintext><body>"),
        ("template plaintext", "<template><plaintext></template><body>", "<template><plaintext></template><body>"),
        ("EOF in title", "<head><title>abc", "<head><title>abc"),
        ("EOF in comment", "<head><!-- x", "<head><!-- x"),
        ("EOF in attribute", "<head><meta content=\"x", "<head><meta content=\"x"),
        ("EOF in start tag name", "<head><meta", "<head>⟦B⟧<meta"),
        ("EOF in end tag name", "<head></hea", "<head>⟦B⟧</hea"),
        ("EOF after <", "<head><", "<head>⟦B⟧<"),
        ("EOF in body tag", "<head><body class=x", "<head><body class=x"),
    ]

    static let binaryDocuments: [(String, [UInt8], [UInt8])] = [
        ("UTF-16LE BOM", [0xFF, 0xFE, 0x3C, 0x00, 0x62, 0x00], [0xFF, 0xFE, 0x3C, 0x00, 0x62, 0x00]),
        ("UTF-16BE BOM", [0xFE, 0xFF, 0x00, 0x3C], [0xFE, 0xFF, 0x00, 0x3C]),
        ("partial BOM", [0xEF, 0xBB], markerBytes + [0xEF, 0xBB]),
        ("broken BOM", [0xEF, 0xBB, 0x41], markerBytes + [0xEF, 0xBB, 0x41]),
        ("lone FE", [0xFE, 0x3C], markerBytes + [0xFE, 0x3C]),
        ("NUL", Array("<head>\0".utf8), Array("<head>⟦B⟧\0".utf8)),
    ]

    static var allDocuments: [(String, [UInt8], [UInt8])] {
        documents.map { ($0.0, Array($0.1.utf8), Array($0.2.utf8)) } + binaryDocuments
    }

    @Test func fixedDocumentsAtEverySplit() {
        for (name, document, expected) in Self.allDocuments {
            let expectInserted = expected != document
            #expect(run(document, splits: []) == Result(bytes: expected, inserted: expectInserted), "\(name): whole")
            for split in 0...document.count {
                let result = run(document, splits: [split])
                #expect(result == Result(bytes: expected, inserted: expectInserted), "\(name): split at \(split)")
            }
            #expect(run(document, splits: Array(0...document.count)).bytes == expected, "\(name): byte by byte")
        }
    }

    @Test func shortDocumentsAtEveryPairOfSplits() {
        for (name, document, expected) in Self.allDocuments where document.count <= 90 {
            for first in 0...document.count {
                for second in first...document.count {
                    let result = run(document, splits: [first, second])
                    #expect(result.bytes == expected, "\(name): split at \(first), \(second)")
                }
            }
        }
    }

    @Test func referenceAgreesWithTheFixedDocuments() {
        for (name, document, expected) in Self.allDocuments {
            #expect(Reference.inject(document, Self.markerBytes) == expected, "reference: \(name)")
        }
    }

    @Test func randomDocumentsInRandomChunksMatchTheReference() {
        var rng = SplitMix64(seed: 0xAC7A5)
        var failures: [String] = []
        var insertedCount = 0
        for _ in 0..<6000 {
            let document = Fragments.document(&rng)
            let expected = Reference.inject(document, Self.markerBytes)
            var splits: [Int] = []
            var position = 0
            while position < document.count {
                position += Int(rng.next() % 9)
                splits.append(min(position, document.count))
            }
            let result = run(document, splits: splits)
            if expected != document { insertedCount += 1 }
            if result.bytes != expected || result.inserted != (expected != document) {
                failures.append("\(String(decoding: document, as: UTF8.self).debugDescription) splits \(splits)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) mismatches, e.g. \(failures.prefix(3))")
        #expect(insertedCount > 3000, "the generator should mostly produce documents that get a banner")
    }

    @Test func holdsBackOnlyAFewBytes() {
        let documents = Self.allDocuments.map(\.1) + [Array("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>x</title><script>var a = 1 < 2;</script></head><body>".utf8)]
        for document in documents {
            var injector = HTMLBodyInjector(insertion: ByteBuffer(bytes: Self.markerBytes))
            var output: [ByteBuffer] = []
            var written = 0
            for (index, byte) in document.enumerated() {
                injector.feed(ByteBuffer(bytes: [byte]), into: &output)
                written = output.reduce(0) { $0 + $1.readableBytes } - (injector.inserted ? Self.markerBytes.count : 0)
                #expect(index + 1 - written <= 10, "held \(index + 1 - written) bytes of \(String(decoding: document, as: UTF8.self).debugDescription)")
            }
        }
    }

    @Test func afterInsertingChunksPassThroughAsTheyAre() {
        var injector = HTMLBodyInjector(insertion: ByteBuffer(string: "B"))
        var output: [ByteBuffer] = []
        injector.feed(ByteBuffer(string: "<html><body class=x>rest"), into: &output)
        #expect(injector.inserted && injector.isPassthrough)
        #expect(output.map { String(buffer: $0) } == ["<html><body class=x>", "B", "rest"])
        let later = ByteBuffer(string: "<body> <!-- more")
        output.removeAll()
        injector.feed(later, into: &output)
        injector.finish(into: &output)
        #expect(output == [later])
        #expect(output[0].readerIndex == later.readerIndex)
    }

    @Test func outputSlicesTheInput() {
        var chunk = ByteBuffer(string: "xxxx<head><title>t</title><body>abc")
        chunk.moveReaderIndex(forwardBy: 4)  // a chunk with a non-zero reader index
        var injector = HTMLBodyInjector(insertion: ByteBuffer(string: "B"))
        var output: [ByteBuffer] = []
        injector.feed(chunk, into: &output)
        #expect(output.map { String(buffer: $0) } == ["<head><title>t</title><body>", "B", "abc"])
        chunk.withUnsafeReadableBytes { whole in
            output[2].withUnsafeReadableBytes { tail in
                #expect(tail.baseAddress == whole.baseAddress! + whole.count - 3, "a slice, not a copy")
            }
        }
    }

    @Test func finishIsIdempotentAndNeverInsertsTwice() {
        var injector = HTMLBodyInjector(insertion: ByteBuffer(string: "B"))
        var output: [ByteBuffer] = []
        injector.feed(ByteBuffer(string: "<head>"), into: &output)
        injector.finish(into: &output)
        injector.finish(into: &output)
        injector.feed(ByteBuffer(string: "<body>"), into: &output)
        #expect(output.map { String(buffer: $0) }.joined() == "<head>B<body>")
    }

    @Test func largeDocumentIn4KChunks() {
        // 10 MB of head (scripts, styles, comments, metas), then the body tag.
        let unit = Array(Fragments.headUnit.utf8)
        var document: [UInt8] = Array("<!DOCTYPE html><html><head>".utf8)
        document.reserveCapacity(10_500_000)
        while document.count < 10_000_000 { document += unit }
        let insertAt = document.count + "<body class=\"page\">".utf8.count
        document += Array("<body class=\"page\"><p>done</p></body></html>".utf8)
        let chunks = stride(from: 0, to: document.count, by: 4096).map {
            ByteBuffer(bytes: document[$0..<min($0 + 4096, document.count)])
        }
        let insertion = ByteBuffer(bytes: Self.markerBytes)
        var output: [ByteBuffer] = []
        output.reserveCapacity(chunks.count + 4)
        var best = Duration.seconds(1000)
        for _ in 0..<3 {
            output.removeAll(keepingCapacity: true)
            let start = ContinuousClock.now
            var injector = HTMLBodyInjector(insertion: insertion)
            for chunk in chunks { injector.feed(chunk, into: &output) }
            injector.finish(into: &output)
            best = min(best, ContinuousClock.now - start)
        }
        var joined: [UInt8] = []
        joined.reserveCapacity(document.count + 8)
        for buffer in output { joined += buffer.readableBytesView }
        let expected = Array(document[..<insertAt]) + Self.markerBytes + Array(document[insertAt...])
        #expect(joined == expected)
        let seconds = Double(best.components.attoseconds) / 1e18 + Double(best.components.seconds)
        print("HTMLBodyInjector: 10 MB head scanned in 4 KB chunks: \(Int(Double(document.count) / seconds / 1e6)) MB/s")
    }

    @Test func typicalPageCost() {
        // ~50 KB page, body tag after a typical head.
        let head = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Orders — Legacy App</title>\n<link rel=\"stylesheet\" href=\"/static/app.css?v=123\">\n<script src=\"/static/app.js\" defer></script>\n<!-- analytics -->\n<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);} if (a < b && c > d) {}</script>\n<style>body { margin: 0 } .x > .y { color: red }</style>\n</head>\n<body class=\"orders\">\n"
        var page = head
        while page.utf8.count < 50_000 { page += "<tr><td class=\"id\">12345</td><td>Some customer name &amp; co</td><td>2024-01-01</td></tr>\n" }
        page += "</body></html>"
        let bytes = Array(page.utf8)
        let chunks = stride(from: 0, to: bytes.count, by: 16_384).map { ByteBuffer(bytes: bytes[$0..<min($0 + 16_384, bytes.count)]) }
        let insertion = ByteBuffer(string: "<div id=\"actas-banner\">You are acting as …</div>")
        var output: [ByteBuffer] = []
        output.reserveCapacity(16)
        let iterations = 20_000
        var best = Duration.seconds(1000)
        for _ in 0..<3 {
            let start = ContinuousClock.now
            for _ in 0..<iterations {
                output.removeAll(keepingCapacity: true)
                var injector = HTMLBodyInjector(insertion: insertion)
                for chunk in chunks { injector.feed(chunk, into: &output) }
                injector.finish(into: &output)
                precondition(injector.inserted)
            }
            best = min(best, ContinuousClock.now - start)
        }
        #expect(output.reduce(0) { $0 + $1.readableBytes } == bytes.count + insertion.readableBytes)
        let nanos = Double(best.components.attoseconds) / 1e9 + Double(best.components.seconds) * 1e9
        print("HTMLBodyInjector: \(bytes.count / 1000) KB page, body after a \(head.utf8.count)-byte head, 16 KB chunks: \(nanos / Double(iterations) / 1000) µs/page")
    }

    // MARK: - Running

    struct Result: Equatable, CustomStringConvertible {
        var bytes: [UInt8]
        var inserted: Bool
        var description: String { "\(String(decoding: bytes, as: UTF8.self).debugDescription) inserted: \(inserted)" }
    }

    /// Feeds `document` cut at `splits` (sorted positions), then finishes.
    func run(_ document: [UInt8], splits: [Int]) -> Result {
        var injector = HTMLBodyInjector(insertion: ByteBuffer(bytes: Self.markerBytes))
        var output: [ByteBuffer] = []
        var start = 0
        for split in splits + [document.count] {
            injector.feed(ByteBuffer(bytes: document[start..<split]), into: &output)
            start = split
        }
        injector.finish(into: &output)
        var bytes: [UInt8] = []
        for buffer in output {
            #expect(buffer.readableBytes > 0, "no empty buffers in the output")
            bytes += buffer.readableBytesView
        }
        return Result(bytes: bytes, inserted: injector.inserted)
    }
}

// MARK: - Reference

/// The same rules, written the slow and obvious way: whole document, look-ahead searches
/// instead of states. Returns the document with the insertion, or unchanged.
private enum Reference {
    static func inject(_ document: [UInt8], _ insertion: [UInt8]) -> [UInt8] {
        guard let at = insertionPoint(document) else { return document }
        return Array(document[..<at]) + insertion + Array(document[at...])
    }

    static let headElements: Set<String> = [
        "html", "head", "meta", "link", "base", "basefont", "bgsound",
        "title", "style", "script", "noscript", "noframes", "template", "body",
    ]
    static let rawElements: Set<String> = ["title", "textarea", "style", "xmp", "iframe", "noembed", "noframes", "noscript"]

    static func insertionPoint(_ d: [UInt8]) -> Int? {
        let n = d.count
        if has(d, 0, [0xFE, 0xFF]) || has(d, 0, [0xFF, 0xFE]) { return nil }
        var p = has(d, 0, [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var depth = 0
        var foreign = 0
        while true {
            guard p < n else { return n }
            if d[p] != ch("<") {
                if depth == 0 && !isSpace(d[p]) { return p }
                p += 1
                continue
            }
            guard p + 1 < n else { return depth == 0 ? p : nil }
            let next = d[p + 1]
            if next == ch("!") {
                if has(d, p, "<!--") {
                    guard let end = commentEnd(d, p + 4) else { return nil }
                    p = end
                } else if depth > 0 && foreign > 0 && has(d, p, "<![CDATA[") {
                    guard let end = find(d, "]]>", p + 9) else { return nil }
                    p = end + 3
                } else {
                    guard let end = find(d, ">", p + 2) else { return nil }
                    p = end + 1
                }
            } else if next == ch("?") {
                guard let end = find(d, ">", p + 2) else { return nil }
                p = end + 1
            } else if next == ch("/") {
                guard p + 2 < n else { return depth == 0 ? p : nil }
                if isLetter(d[p + 2]) {
                    let (name, nameEnd) = tagName(d, p + 2)
                    if nameEnd == n { return depth == 0 && nameEnd - (p + 2) <= 4 ? p : nil }
                    if depth == 0 && ["body", "html", "br"].contains(name) { return p }
                    guard let (end, _) = attributes(d, nameEnd) else { return nil }
                    p = end
                    if depth > 0 {
                        if name == "template" {
                            depth -= 1
                            foreign = 0
                        } else if (name == "svg" || name == "math") && foreign > 0 {
                            foreign -= 1
                        }
                    }
                } else if d[p + 2] == ch(">") {
                    p += 3
                } else {
                    guard let end = find(d, ">", p + 2) else { return nil }
                    p = end + 1
                }
            } else if isLetter(next) {
                let (name, nameEnd) = tagName(d, p + 1)
                if depth == 0 {
                    if nameEnd == n { return p }
                    if name == "frameset" { return nil }
                    if !headElements.contains(name) { return p }
                }
                guard let (end, selfClosing) = attributes(d, nameEnd) else { return nil }
                p = end
                if depth == 0 && name == "body" { return p }
                if name == "script" {
                    guard let end = scriptEnd(d, p) else { return nil }
                    p = end
                } else if rawElements.contains(name) && (depth > 0 || headElements.contains(name)) {
                    guard let end = rawTextEnd(d, p, name) else { return nil }
                    p = end
                } else if name == "template" {
                    depth += 1
                    if depth == 1 { foreign = 0 }
                } else if depth > 0 && name == "plaintext" {
                    return nil
                } else if depth > 0 && (name == "svg" || name == "math") && !selfClosing {
                    foreign += 1
                }
            } else {
                if depth == 0 { return p }
                p += 1
            }
        }
    }

    /// After `<!--`: index after the comment, or nil at EOF.
    static func commentEnd(_ d: [UInt8], _ q: Int) -> Int? {
        if has(d, q, ">") { return q + 1 }
        if has(d, q, "->") { return q + 2 }
        let a = find(d, "-->", q).map { $0 + 3 }
        let b = find(d, "--!>", q).map { $0 + 4 }
        switch (a, b) {
        case let (a?, b?): return min(a, b)
        default: return a ?? b
        }
    }

    /// Name from `q` up to whitespace, `/`, `>` or EOF; returns it lowercased and where it ends.
    static func tagName(_ d: [UInt8], _ q: Int) -> (String, Int) {
        var i = q
        while i < d.count && !isSpace(d[i]) && d[i] != ch("/") && d[i] != ch(">") { i += 1 }
        return (String(decoding: d[q..<i].map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self), i)
    }

    /// From the end of a tag name to after its `>` (nil at EOF), and whether it was `/>`.
    static func attributes(_ d: [UInt8], _ q: Int) -> (Int, Bool)? {
        let n = d.count
        var i = q
        while true {
            var lastSlash = false
            while i < n && (isSpace(d[i]) || d[i] == ch("/")) {
                lastSlash = d[i] == ch("/")
                i += 1
            }
            guard i < n else { return nil }
            if d[i] == ch(">") { return (i + 1, lastSlash) }
            i += 1  // the first character of a name may be anything, `=` included
            while i < n && !isSpace(d[i]) && d[i] != ch("/") && d[i] != ch(">") && d[i] != ch("=") { i += 1 }
            while i < n && isSpace(d[i]) { i += 1 }
            guard i < n else { return nil }
            guard d[i] == ch("=") else { continue }
            i += 1
            while i < n && isSpace(d[i]) { i += 1 }
            guard i < n else { return nil }
            if d[i] == ch("\"") || d[i] == ch("'") {
                guard let close = find(d, [d[i]], i + 1) else { return nil }
                i = close + 1
            } else if d[i] == ch(">") {
                return (i + 1, false)
            } else {
                while i < n && !isSpace(d[i]) && d[i] != ch(">") { i += 1 }
                guard i < n else { return nil }
                if d[i] == ch(">") { return (i + 1, false) }
            }
        }
    }

    /// First `</name` + whitespace, `/` or `>` at or after `q`, case-insensitively.
    static func endTag(_ d: [UInt8], _ name: String, _ q: Int, slash: Bool = true) -> Int? {
        let pattern = Array((slash ? "</" : "<") + name)
        var i = q
        while i + pattern.count < d.count {
            var matches = true
            for (k, c) in pattern.enumerated() where Character(Unicode.Scalar(d[i + k])).lowercased() != String(c) {
                matches = false
                break
            }
            let after = d[i + pattern.count]
            if matches && (isSpace(after) || after == ch("/") || after == ch(">")) { return i }
            i += 1
        }
        return nil
    }

    static func rawTextEnd(_ d: [UInt8], _ q: Int, _ name: String) -> Int? {
        guard let at = endTag(d, name, q) else { return nil }
        return attributes(d, at + 2 + name.utf8.count)?.0
    }

    /// Script data: `<!--` escapes; inside, `<script` starts a double escape that
    /// `</script` ends; `-->` always returns to plain script data.
    static func scriptEnd(_ d: [UInt8], _ q: Int) -> Int? {
        var i = q
        var mode = 0  // 0 plain, 1 escaped, 2 double escaped
        while true {
            let close = endTag(d, "script", i)
            switch mode {
            case 0:
                let escape = find(d, "<!--", i)
                if let close, escape.map({ close < $0 }) ?? true {
                    return attributes(d, close + 8)?.0
                }
                guard let escape else { return nil }
                i = escape + 2  // its `--` can be the start of `-->`
                mode = 1
            case 1:
                let leave = find(d, "-->", i) ?? Int.max
                let open = endTag(d, "script", i, slash: false) ?? Int.max
                let end = close ?? Int.max
                let first = min(leave, open, end)
                if first == Int.max { return nil }
                if first == end { return attributes(d, end + 8)?.0 }
                if first == leave { i = leave + 3; mode = 0 } else { i = open + 8; mode = 2 }
            default:
                let leave = find(d, "-->", i) ?? Int.max
                let end = close ?? Int.max
                let first = min(leave, end)
                if first == Int.max { return nil }
                if first == leave { i = leave + 3; mode = 0 } else { i = end + 9; mode = 1 }
            }
        }
    }

    static func find(_ d: [UInt8], _ s: String, _ q: Int) -> Int? { find(d, Array(s.utf8), q) }

    static func find(_ d: [UInt8], _ s: [UInt8], _ q: Int) -> Int? {
        guard q <= d.count - s.count else { return nil }
        return (q...(d.count - s.count)).first { has(d, $0, s) }
    }

    static func has(_ d: [UInt8], _ at: Int, _ s: String) -> Bool { has(d, at, Array(s.utf8)) }
    static func has(_ d: [UInt8], _ at: Int, _ s: [UInt8]) -> Bool {
        at >= 0 && at + s.count <= d.count && Array(d[at..<(at + s.count)]) == s
    }
    static func ch(_ c: Unicode.Scalar) -> UInt8 { UInt8(c.value) }
    static func isSpace(_ b: UInt8) -> Bool { b == 9 || b == 10 || b == 12 || b == 13 || b == 32 }
    static func isLetter(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
}

// MARK: - Random documents

private enum Fragments {
    static let all: [String] = [
        "<!DOCTYPE html>", "<!doctype html>", "<html>", "<html lang=\"en\">", "<head>", "</head>", "<HEAD >",
        "<meta charset=\"utf-8\">", "<link rel=stylesheet href=a.css>", "<base href=/x/>", "<meta content='<body>' >",
        "<title>T <body> &amp;</title>", "<title>", "</title>", "</title >", "<textarea>", "</textarea>",
        "<style>p > a { }</style>", "<style>", "</style>", "<script>", "</script>", "</script >", "</SCRIPT>",
        "</scriptx>", "<script>if (a<b) document.write(\"<body>\")</script>", "<script><!--<script></script>--></script>",
        "<!--<script>", "<script/>", "<noscript><body></noscript>", "<noscript>", "</noscript>", "<noframes>", "</noframes>",
        "<xmp>", "</xmp>", "<iframe>", "</iframe>", "<noembed>", "</noembed>", "<plaintext>",
        "<template>", "</template>", "<svg>", "</svg>", "<svg/>", "<math>", "</math>", "<![CDATA[", "]]>", "<![CDATA[<body>]]>",
        "<!--", "-->", "--!>", "--", "<!-->", "<!->", "-<", "</titlex>", "<!-- -", "<!--->", "<!-- <body> -->", "<!---x-->", "<!", "<!-x>",
        "<?xml version=\"1.0\"?>", "<?", "<body>", "<BODY class=\"a>b\">", "<body/>", "<body a=b=\"c>d\">", "<Body\n>",
        "<bodyx>", "<body-foo>", "<div title=\"<body>\">", "<div>", "<p>", "</p>", "</body>", "</html>", "</br>",
        "</ x>", "</>", "</", "<frameset>", "<a b=c/>", "<a b='>'>", "<meta =\"x>\">",
        "text", "&amp;", " ", "\n", "\t", "  \r\n", "<", ">", "/", "\"", "'", "=", "-", "!", "]",
        "<html><head><title>x</title></head>", "<head><meta charset=utf-8></head>",
    ]

    static let headUnit = "<meta name=\"x\" content=\"a > b\">\n<!-- a comment with <body> in it -- still -->\n<script>var s = '<body>'; if (a < b && c > d) { x = \"</scri\" + \"pt>\"; }</script>\n<style>.a > .b { content: \"<body>\" }</style>\n<link rel=\"preload\" href=\"/x.js\" as=\"script\">\n<noscript><img src=\"x.png\"></noscript>\n<script><!-- document.write(\"<script>x()</script>\") --></script>\n"

    static func document(_ rng: inout SplitMix64) -> [UInt8] {
        var bytes: [UInt8] = []
        if rng.next() % 10 == 0 { bytes += [0xEF, 0xBB, 0xBF] }
        let count = Int(rng.next() % 14)
        for _ in 0..<count {
            var fragment = Array(all[Int(rng.next() % UInt64(all.count))].utf8)
            if rng.next() % 4 == 0 {
                fragment = fragment.map { b in
                    (b >= 97 && b <= 122 && rng.next() % 2 == 0) ? b - 32 : b
                }
            }
            bytes += fragment
        }
        if rng.next() % 20 == 0, !bytes.isEmpty {
            bytes.removeLast(Int(rng.next() % UInt64(min(bytes.count, 6))))  // cut off: EOF anywhere
        }
        return bytes
    }
}

@Suite("HTML body injector: why a document can never get the insertion")
struct HTMLBodyInjectorRefusalTests {
    func refusal(_ chunks: [[UInt8]]) -> (HTMLBodyInjector.Refusal?, Bool) {
        var injector = HTMLBodyInjector(insertion: ByteBuffer(string: "B"))
        var output: [ByteBuffer] = []
        for chunk in chunks { injector.feed(ByteBuffer(bytes: chunk), into: &output) }
        injector.finish(into: &output)
        return (injector.refusal, injector.inserted)
    }

    @Test func framesetAndUTF16AreNamed() {
        #expect(refusal([Array("<html><head></head><frameset><frame src=a></frameset>".utf8)]) == (.frameset, false))
        #expect(refusal([Array("<!doctype html><FRAME".utf8), Array("SET cols=1>".utf8)]) == (.frameset, false))
        #expect(refusal([[0xFF, 0xFE, 0x3C, 0x00]]) == (.utf16, false))
        #expect(refusal([[0xFE], [0xFF, 0x00, 0x3C]]) == (.utf16, false))
    }

    @Test func ordinaryDocumentsHaveNone() {
        #expect(refusal([Array("<body>x".utf8)]) == (nil, true))
        #expect(refusal([[0xEF, 0xBB, 0xBF] + Array("<body>x".utf8)]) == (nil, true))
        #expect(refusal([Array("<html><head><title>unclosed".utf8)]) == (nil, false))  // left out, but not a refusal
        #expect(refusal([Array("<body><frameset>".utf8)]) == (nil, true))  // after the body opened, nothing changes
    }
}
