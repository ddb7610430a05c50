import ActAsTestSupport
import Foundation
import Testing
@testable import ActAsCore

/// Strict (impersonating) normalisation: the path forwarded, or nil for `bad_path_encoding`.
let strictCases: [(String, String?)] = [
    // Already normal: forwarded as is.
    ("/", "/"), ("/a/b", "/a/b"), ("/a/b/", "/a/b/"), ("/.well-known/x", "/.well-known/x"), ("/a/.hidden", "/a/.hidden"),
    ("/a/..b", "/a/..b"), ("/a/b..", "/a/b.."), ("/a/...", "/a/..."), ("/a%3Ab", "/a%3Ab"), ("/a%3Bb/c", "/a%3Bb/c"),
    // Empty and relative.
    ("", "/"), ("a/b", "/a/b"),
    // Dot segments, plain and encoded.
    ("/a/../b", "/b"), ("/a/./b", "/a/b"), ("/a/%2e%2e/b", "/b"), ("/a/%2E%2e/b", "/b"), ("/a/.%2e/b", "/b"),
    ("/a/%2e/b", "/a/b"), ("/%2e", "/"), ("/a/b/../../../../c", "/c"), ("/.", "/"), ("/..", "/"), ("/../", "/"),
    ("/./", "/"), ("/a/b/..", "/a/"), ("/a/./b/.", "/a/b/"), ("/a/b/../", "/a/"), ("/../../etc/passwd", "/etc/passwd"),
    // Parameters dropped, before dot resolution.
    ("/private/..;/x", "/x"), ("/..;/private/x", "/private/x"), ("/a;jsessionid=x/b", "/a/b"),
    ("/a/b;jsessionid=x", "/a/b"), ("/a/b;x=1/..", "/a/"), ("/;x/private", "/private"), ("/a/%2e%2e;x/b", "/b"),
    ("/a;/b", "/a/b"), ("/a/;", "/a/"),
    // Empty segments merged.
    ("/a//b", "/a/b"), ("///private", "/private"), ("//", "/"), ("/a//", "/a/"),
    // Unreserved decoded, everything else kept with upper-case hex.
    ("/%41%7e", "/A~"), ("/%7E", "/~"), ("/a%2db%5f%2E", "/a-b_."), ("/%70rivate", "/private"),
    ("/a%3ab", "/a%3Ab"), ("/%c3%a9", "/%C3%A9"), ("/a%20b", "/a%20b"), ("/a%3bb", "/a%3Bb"),
    // A literal percent sign.
    ("/100%25", "/100%25"), ("/a%25zz", "/a%25zz"), ("/a%25g1", "/a%25g1"), ("/a%25/b", "/a%25/b"),
    ("/a%25%2F", nil),
    // Refused: encoded separators and NUL, raw backslash and NUL, malformed and double encoding.
    ("/a%2fb", nil), ("/a%2Fb", nil), ("/a%5cb", nil), ("/a%5Cb", nil), ("/a%00b", nil), ("/a\\b", nil),
    ("/a\u{0}b", nil), ("/%252e", nil), ("/%252E%252E/x", nil), ("/%25%32%65", nil), ("/%25%41b", nil),
    ("/%2570rivate/x", nil), ("/a%zz", nil), ("/a%4", nil), ("/a%", nil), ("/a%%41", nil), ("/a%g0", nil),
    ("/a;x%2fy/b", nil), ("/a;%zz", nil), ("/public/..%2f..%2fprivate/x", nil), ("/a/%2e%2e%2f", nil), ("\\", nil),
    // Refused: escapes that do not decode to well-formed UTF-8 (overlong `..` and `/`, stray
    // continuation and lead bytes, surrogates, beyond U+10FFFF). (Parameters are dropped, so
    // whatever they hold never reaches the upstream.)
    ("/x/%c0%ae%c0%ae/private", nil), ("/private%c0%afx", nil), ("/%C0%AF", nil), ("/%e0%80%ae", nil), ("/a%ff", nil),
    ("/a%80", nil), ("/a%c3", nil), ("/a%c3/b", nil), ("/a%ed%a0%80", nil), ("/a%f4%90%80%80", nil),
    // Well-formed UTF-8 passes, encoded as it came (upper-case hex).
    ("/caf%c3%a9/menu", "/caf%C3%A9/menu"), ("/%F0%9F%98%80", "/%F0%9F%98%80"), ("/pr%C4%B1vate/x", "/pr%C4%B1vate/x"),
    ("/a;x=%c0%ae/b", "/a/b"),
]

/// Outside impersonation nothing is refused; odd escapes pass through as they came.
let lenientCases: [(String, String)] = [
    ("/a%2fb", "/a%2Fb"), ("/a%5cb", "/a%5Cb"), ("/a%00b", "/a%00b"), ("/a\\b", "/a\\b"), ("/a%zz", "/a%zz"),
    ("/a%4", "/a%4"), ("/a%", "/a%"), ("/%252e", "/%252e"), ("/%25%32%65", "/%252e"),
    ("/public/..%2f..%2fprivate/x", "/public/..%2F..%2Fprivate/x"), ("/x/%2e%2e/y%3a", "/y%3A"), ("/a;%zz/b", "/a/b"),
]

@Suite struct PathNormalizerTests {
    @Test(arguments: strictCases)
    func strict(input: String, expected: String?) {
        #expect(PathNormalizer.normalized(input, strict: true) == expected)
        let result = PathNormalizer.normalize(input, strict: true)
        switch result {
        case .unchanged: #expect(expected == input)
        case .normalized(let bytes): #expect(bytes != Array(input.utf8))
        case .badEncoding: #expect(expected == nil)
        }
    }

    @Test(arguments: lenientCases)
    func lenient(input: String, expected: String) {
        #expect(PathNormalizer.normalized(input, strict: false) == expected)
    }

    @Test(arguments: strictCases.compactMap { $0.1 == nil ? nil : $0.0 })
    func strictAndLenientAgreeWhenNothingIsRefused(input: String) {
        #expect(PathNormalizer.normalize(input, strict: false) == PathNormalizer.normalize(input, strict: true))
    }

    @Test func commonPathsAreNotCopied() {
        for path in ["/", "/index.html", "/api/v1/users/42", "/static/app.v2.js", "/a/b/", "/.well-known/jwks.json"] {
            #expect(PathNormalizer.normalize(path, strict: true) == .unchanged, "\(path)")
        }
    }

    @Test(arguments: strictCases.compactMap(\.1) + lenientCases.map(\.1))
    func outputIsAFixedPoint(output: String) {
        #expect(PathNormalizer.normalize(output, strict: false) == .unchanged, "\(output)")
    }

    @Test func worksOnRawBytes() {
        let bytes: [UInt8] = Array("/a/%2e%2e/b".utf8)
        let result = bytes.withUnsafeBytes { PathNormalizer.normalize($0, strict: true) }
        #expect(result == .normalized(Array("/b".utf8)))
    }

    @Test func splitsTargetAtTheFirstQuestionMark() {
        #expect(PathNormalizer.split(target: "/a/b?x=1?y") == ("/a/b", "x=1?y"))
        #expect(PathNormalizer.split(target: "/a/b?") == ("/a/b", ""))
        #expect(PathNormalizer.split(target: "/a/b") == ("/a/b", nil))
        let bytes: [UInt8] = Array("/a%3F?q".utf8)
        #expect(bytes.withUnsafeBytes { PathNormalizer.pathEnd(ofTarget: $0) } == 5)
        #expect([UInt8]().withUnsafeBytes { PathNormalizer.pathEnd(ofTarget: $0) } == 0)
    }

    /// Random paths from a hostile alphabet (fixed seed): strict output must have no dot
    /// segments, empty segments, parameters, encoded separators, backslashes or double encoding,
    /// must be stable, and the no-copy fast path must agree with the full rewrite.
    @Test func hostileRandomPathsKeepTheInvariants() {
        let alphabet: [UInt8] = Array("/.;%25aAfFcC0\\e~".utf8) + [0]
        var random = SplitMix64(seed: 0xAC7A5)
        for _ in 0..<20_000 {
            let length = Int(random.next() % 14)
            let input = (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            let strict = input.withUnsafeBytes { PathNormalizer.normalize($0, strict: true) }
            let lenient = input.withUnsafeBytes { PathNormalizer.normalize($0, strict: false) }
            let lenientOutput: [UInt8]
            switch lenient {
            case .unchanged: lenientOutput = input
            case .normalized(let bytes): lenientOutput = bytes
            case .badEncoding:
                Issue.record("lenient mode refused \(input)")
                continue
            }
            #expect(lenientOutput.first == UInt8(ascii: "/"))
            #expect(!lenientOutput.contains(UInt8(ascii: ";")))
            #expect(lenientOutput.withUnsafeBytes { PathNormalizer.normalize($0, strict: false) } == .unchanged)
            if input.withUnsafeBytes(PathNormalizer.isAlreadyNormal) { #expect(lenient == .unchanged) }

            guard case .badEncoding = strict else {
                // Accepted in strict mode: the same as lenient, and clean.
                #expect(strict == lenient)
                let text = String(decoding: lenientOutput, as: UTF8.self)
                for banned in ["//", "/./", "/../", "%2F", "%5C", "%00", "\\", "\u{0}"] {
                    #expect(!text.contains(banned), "\(text) contains \(banned)")
                }
                #expect(!text.hasSuffix("/.") && !text.hasSuffix("/.."), "\(text)")
                #expect(text.range(of: "%25[0-9A-Fa-f]{2}", options: .regularExpression) == nil, "\(text)")
                continue
            }
        }
    }
}

@Suite struct HiddenPathsTests {
    let hidden = HiddenPaths(["/account/security*", "/private/*"], caseSensitive: false)

    /// Normalise as the proxy does while impersonating; a refused path never reaches matching.
    func outcome(_ rawPath: String) -> String {
        guard let path = PathNormalizer.normalized(rawPath, strict: true) else { return "refused" }
        return hidden.isHidden(path) ? "hidden" : "forwarded"
    }

    @Test(arguments: [
        "/private/x", "/PRIVATE/x", "/Private/X", "/private;x/y", "/./private/x", "//private/x", "/%70rivate/x",
        "/%50RIVATE/x", "/public/../private/x", "/public/%2e%2e/private/x", "/public/%2E%2e/private/x",
        "/public/..;/private/x", "/..;/private/x", "/private/./x", "/private//x", "/a/b/../../private/x",
        "/../private/x", "/private/", "/private/x;jsessionid=1", "///private/x", "/private/%2e%2e/private/x",
        "/account/security", "/Account/Security/keys", "/account/securit%79", "/account;x/security",
        "/account/security/../security/mfa", "/static/../account/security",
    ])
    func hiddenWhateverTheSpelling(path: String) {
        #expect(outcome(path) == "hidden")
    }

    @Test(arguments: [
        "/public/..%2f..%2fprivate/x", "/public/..%2F..%2Fprivate/x", "/private%2fx", "/%2570rivate/x",
        "/public/..%5cprivate/x", "/public/..\\private\\x", "/public/%252e%252e/private/x", "/private%00/x",
        "/public/%2e%2e%2fprivate/x",
    ])
    func refusedBeforeMatching(path: String) {
        #expect(outcome(path) == "refused")
    }

    /// How lenient servers read a segment: trailing dots and spaces dropped (Windows, IIS), and
    /// Unicode case mapping to ASCII (`ı`→I, `ſ`→S, `K`→k, `ﬀ`→FF) where names compare
    /// case-insensitively.
    @Test(arguments: [
        "/private./x", "/private%20/x", "/private.%20./x", "/PRIVATE%2E/x", "/private..../x", "/private%20%20/x",
        "/pr%C4%B1vate/x", "/PR%C4%B1VATE/x", "/account/%C5%BFecurity", "/account/security%20", "/account./security.",
        "/%E2%84%AA/../private/x", "/pr%C4%B1vate./x",
    ])
    func hiddenAsLenientServersReadIt(path: String) {
        #expect(outcome(path) == "hidden")
    }

    @Test(arguments: [
        "/public/x", "/privatex/y", "/private", "/account/secure", "/public/private/x", "/x/account/security",
        "/private-notes./x", "/priv%C3%A4te/x", "/.private/x", "/private.x/y", "/caf%C3%A9/private/x", "/private.",
    ])
    func otherPathsAreForwarded(path: String) {
        #expect(outcome(path) == "forwarded")
    }

    @Test func caseSensitiveWhenConfigured() {
        let sensitive = HiddenPaths(["/private/*"], caseSensitive: true)
        #expect(sensitive.isHidden("/private/x"))
        #expect(!sensitive.isHidden("/PRIVATE/x"))
        // A case-sensitive app does not fold `ı` either; trailing dots are still dropped.
        #expect(!sensitive.isHidden("/pr%C4%B1vate/x"))
        #expect(sensitive.isHidden("/private./x"))
    }

    @Test func lookalikeOnlyWhenSomethingChanges() {
        func lookalike(_ path: String, foldCase: Bool = true) -> String? {
            Array(path.utf8).withUnsafeBytes { HiddenPaths.lookalike($0, foldCase: foldCase) }.map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(lookalike("/a/b/") == nil)
        #expect(lookalike("/caf%C3%A9") == nil)
        #expect(lookalike("/a./b%20") == "/a/b")
        #expect(lookalike("/a/.../b") == "/a/b")
        #expect(lookalike("/x%C4%B1%C3%A9") == "/xi%C3%A9")
        #expect(lookalike("/x%C4%B1", foldCase: false) == nil)
        #expect(lookalike("/%EF%AC%80") == "/ff")
    }

    @Test func patternsAreNormalisedLikePaths() {
        let paths = HiddenPaths(["/a%7eb/*", "/docs//internal/*", "/x%3a/*"], caseSensitive: true)
        #expect(paths.isHidden("/a~b/c"))
        #expect(paths.isHidden("/docs/internal/c"))
        #expect(paths.isHidden("/x%3A/c"))
        #expect(paths.patterns.map(\.text) == ["/a~b/*", "/docs/internal/*", "/x%3A/*"])
        #expect(HiddenPaths([]).isEmpty)
        #expect(!HiddenPaths([]).isHidden("/private/x"))
    }
}
