@testable import ActAsPages
import Foundation
import Testing
@testable import ActAsConsole

private func request(headers: [(name: String, value: String)], query: String = "", body: String = "") -> ConsoleRequest {
    ConsoleRequest(method: "GET", path: "/.actas/", query: query, headers: headers, body: Array(body.utf8),
                   clientIP: "192.0.2.1", requestID: "req-1", principal: nil, authentication: .none)
}

@Suite("Return paths")
struct ReturnPathTests {
    @Test(arguments: ["/", "/ok", "/ok?x=1#f", "/a/b/c?q=%2F&x=y", "/%C3%A9t%C3%A9", "/.actas/", "/a//b", "/~user", "/a%20b",
                      "/a.b/c..d/.e", "/x?rd=/../..//evil", "/x#/../..//y", "/100%", "/%zz", "/a;b=c/d", "/.well-known/x"])
    func safePathsAreKept(path: String) {
        #expect(ReturnPath.sanitise(path) == path)
    }

    @Test(arguments: [
        "//evil.com", "///evil.com", "/\\evil.com", "\\/evil", "\\\\evil", "/%09/evil.com", "/%2f/evil", "/%2F/evil",
        "/%5cevil", "/%5Cevil", "https://evil.com", "http:/evil.com", "javascript:alert(1)", "JaVaScRiPt:alert(1)",
        "data:text/html,x", " /x", "/x y", "/\t/evil", "\t//evil", "/%0d%0aSet-Cookie:x", "/\r\nSet-Cookie: x", "/%00",
        "/\u{0}", "/\u{7F}", "/%7f", "", "evil.com", "./x", "../x", "?x=1", "#frag", "/é", "/\u{2028}",
        "/\u{FF0F}evil.com", "/%2f", "\u{FEFF}/x",
        // Dot segments that resolve to a `//` authority (issue 21 item 11), plain and encoded.
        "/.actas/../..//evil.test", "/x/..//evil", "/..//evil", "/.//evil", "/./..//evil", "/a/b/../..//evil",
        "/%2e%2e//evil", "/%2E%2E//evil", "/.%2e//evil", "/%2e.//evil", "/%2e//evil", "/x/%2e%2e//evil?y",
        "/..;/..;//evil", "/x/..;x//evil", "/x/%2e%2e;p//evil",
        // Encoded separators, double encoding, overlong UTF-8 and ambiguous dot segments.
        "/a%2f..%2f..%2f/evil", "/..%2f..%2f/evil", "/%252e%252e//evil", "/a/%25", "/%c0%ae%c0%ae//evil", "/%c0%af",
        "/%E9t", "/x/.../evil", "/x/..%20//evil", "/x/.%20/y", "/%5c%5cevil",
    ])
    func unsafeCandidatesFallBack(candidate: String) {
        #expect(ReturnPath.sanitise(candidate) == "/")
    }

    @Test(arguments: [
        ("/.actas/../x", "/x"), ("/a/b/../c", "/a/c"), ("/a/./b", "/a/b"), ("/a/b/..", "/a/"), ("/a/.", "/a/"),
        ("/..", "/"), ("/../..", "/"), ("/.", "/"), ("/../x?q=/../y", "/x?q=/../y"), ("/a/%2e%2e/b", "/b"),
        ("/a/%2E/b#frag", "/a/b#frag"), ("/a/..;jsessionid=1/b", "/b"), ("/.actas/../../..", "/"),
        ("/a/b/%2e%2e/%2e%2e/c", "/c"), ("/a//../b", "/a/b"),
    ])
    func dotSegmentsAreResolved(candidate: String, expected: String) {
        #expect(ReturnPath.sanitise(candidate) == expected)
    }

    @Test func resolvedPathsAreStable() {
        // Whatever comes out is itself a safe path that resolves to itself.
        for candidate in ["/.actas/../x", "/a/b/../c/./d/", "/../a/%2e%2e/b?c=/..//d", "/x/y/..", "/%41/../b"] {
            let once = ReturnPath.sanitise(candidate)
            #expect(ReturnPath.sanitise(once) == once)
            #expect(!once.hasPrefix("//"))
        }
    }

    @Test func nilAndVeryLong() {
        #expect(ReturnPath.sanitise(nil) == "/")
        #expect(ReturnPath.sanitise("/" + String(repeating: "a", count: 5000)) == "/")
        let limit = "/" + String(repeating: "a", count: 2047)
        #expect(ReturnPath.sanitise(limit) == limit)
    }
}

@Suite("Form and cookie parsing")
struct ConsoleHTTPTests {
    private func decode(_ text: String) -> [[String]] { FormCoding.decode(text).map { [$0.0, $0.1] } }

    @Test func formDecoding() {
        #expect(decode("a=1&b=2") == [["a", "1"], ["b", "2"]])
        #expect(decode("a+b=c+d") == [["a b", "c d"]])
        #expect(decode("x=%2B") == [["x", "+"]])
        #expect(decode("x=%2b%20%C3%A9") == [["x", "+ é"]])
        #expect(decode("x=a%26b%3Dc") == [["x", "a&b=c"]])
        #expect(decode("&&a=1&&") == [["a", "1"]])
        #expect(decode("flag") == [["flag", ""]])
        #expect(decode("flag&x=") == [["flag", ""], ["x", ""]])
        #expect(decode("=v") == [["", "v"]])
        #expect(decode("a=b=c") == [["a", "b=c"]])
        #expect(decode("") == [])
        #expect(decode("a=1&a=2") == [["a", "1"], ["a", "2"]])
    }

    @Test func malformedPercentEscapesStayLiteral() {
        #expect(decode("x=%") == [["x", "%"]])
        #expect(decode("x=%zz") == [["x", "%zz"]])
        #expect(decode("x=%4") == [["x", "%4"]])
        #expect(decode("x=%4g") == [["x", "%4g"]])
        #expect(decode("x=100%") == [["x", "100%"]])
        #expect(decode("x=%FF")[0][1] == "\u{FFFD}")
    }

    /// WHATWG urlencoded parsing: a `%` not followed by two hex digits is a literal `%`, and
    /// the characters after it are decoded normally. The decoder swallows the next two
    /// characters raw, so `%%41` gives `%%41` (not `%A`) and `%+` gives `%+` (not `% `).
    @Test func aBadEscapeDoesNotSwallowTheNextCharacters() {
        #expect(decode("x=%%41") == [["x", "%A"]])
        #expect(decode("x=%+") == [["x", "% "]])
        #expect(decode("x=%%2B") == [["x", "%+"]])
    }

    @Test func encodeRoundTrips() {
        for text in ["plain", "a b&c=d", "/path?x=1#f", "ü€😀", "100%", "+", "%2B", "\r\n\u{0}", ""] {
            let encoded = FormCoding.encode(text)
            #expect(encoded.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "#") })
            #expect(decode("k=" + encoded) == [["k", text]])
        }
        #expect(FormCoding.encode("/a b") == "/a%20b")
    }

    @Test func cookies() {
        let one = request(headers: [("cookie", "a=1; __Host-actas_session=abc; b=2")])
        #expect(one.cookie("__Host-actas_session") == "abc")
        #expect(one.cookie("a") == "1")
        #expect(one.cookie("b") == "2")
        #expect(one.cookie("c") == nil)
        #expect(one.cookie("__Host-actas") == nil)  // a prefix is not a name

        #expect(request(headers: [("cookie", "a=1;b=2")]).cookie("b") == "2")
        #expect(request(headers: [("cookie", "   b=2   ")]).cookie("b") == "2")
        #expect(request(headers: [("cookie", "b=x=y")]).cookie("b") == "x=y")
        #expect(request(headers: [("cookie", "b=")]).cookie("b") == "")
        #expect(request(headers: [("cookie", "b")]).cookie("b") == nil)
        #expect(request(headers: [("cookie", "xb=1; b=2")]).cookie("b") == "2")
        #expect(request(headers: [("cookie", "B=1")]).cookie("b") == nil)
        #expect(request(headers: [("cookie", "b=1; b=2")]).cookie("b") == "1")
        #expect(request(headers: [("cookie", "a=1"), ("cookie", "b=2")]).cookie("b") == "2")
        #expect(request(headers: [("cookie", ";;; ; b=2 ;")]).cookie("b") == "2")
        #expect(request(headers: [("x-cookie", "b=2")]).cookie("b") == nil)
        #expect(request(headers: []).cookie("b") == nil)
    }

    @Test func queryAndFormValues() {
        let get = request(headers: [], query: "rd=%2Fapp%3Fx%3D1&rd=/second")
        #expect(get.queryValue("rd") == "/app?x=1")
        let form = request(headers: [("content-type", "application/x-www-form-urlencoded; charset=utf-8")], body: "user=a+b&csrf_token=t%2Bk")
        #expect(form.formValue("user") == "a b")
        #expect(form.formValue("csrf_token") == "t+k")
        let json = request(headers: [("content-type", "application/json")], body: "user=a")
        #expect(json.formValue("user") == nil)
        let upper = request(headers: [("content-type", "Application/X-WWW-Form-Urlencoded")], body: "user=a")
        #expect(upper.formValue("user") == "a")
    }

    @Test func wantsHTML() {
        #expect(request(headers: [("accept", "text/html,application/xhtml+xml")]).wantsHTML)
        #expect(request(headers: [("accept", "TEXT/HTML")]).wantsHTML)
        #expect(!request(headers: [("accept", "application/json")]).wantsHTML)
        #expect(!request(headers: []).wantsHTML)
    }
}

