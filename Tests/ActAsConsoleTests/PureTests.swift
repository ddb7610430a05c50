import Foundation
import Testing
@testable import ActAsConsole

private func request(headers: [(name: String, value: String)], query: String = "", body: String = "") -> ConsoleRequest {
    ConsoleRequest(method: "GET", path: "/.actas/", query: query, headers: headers, body: Array(body.utf8),
                   clientIP: "192.0.2.1", requestID: "req-1", principal: nil, authentication: .none)
}

@Suite("Return paths")
struct ReturnPathTests {
    @Test(arguments: ["/", "/ok", "/ok?x=1#f", "/a/b/c?q=%2F&x=y", "/%E9t%C3%A9", "/.actas/", "/x/..//evil", "/a//b", "/~user", "/a%20b"])
    func safePathsAreKept(path: String) {
        #expect(ReturnPath.sanitise(path) == path)
    }

    @Test(arguments: [
        "//evil.com", "///evil.com", "/\\evil.com", "\\/evil", "\\\\evil", "/%09/evil.com", "/%2f/evil", "/%2F/evil",
        "/%5cevil", "/%5Cevil", "https://evil.com", "http:/evil.com", "javascript:alert(1)", "JaVaScRiPt:alert(1)",
        "data:text/html,x", " /x", "/x y", "/\t/evil", "\t//evil", "/%0d%0aSet-Cookie:x", "/\r\nSet-Cookie: x", "/%00",
        "/\u{0}", "/\u{7F}", "/%7f", "", "evil.com", "./x", "../x", "?x=1", "#frag", "/é", "/\u{2028}",
        "/\u{FF0F}evil.com", "/%2f", "\u{FEFF}/x",
    ])
    func unsafeCandidatesFallBack(candidate: String) {
        #expect(ReturnPath.sanitise(candidate) == "/")
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

@Suite("Sign-in rate limiter")
struct LoginRateLimiterTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    /// An attempt that failed: `begin` counted it, nothing gives it back.
    func fail(_ limiter: LoginRateLimiter, _ account: String, _ address: String, at now: Date) {
        #expect(limiter.begin(account: account, address: address, now: now) == nil)
    }

    @Test func accountLimitIsCaseInsensitive() {
        let limiter = LoginRateLimiter(maxPerAccount: 5, maxPerAddress: 100, window: 900)
        for index in 0..<5 {
            fail(limiter, index.isMultiple(of: 2) ? "Alice" : "alice", "198.51.100.\(index)", at: start)
        }
        #expect(limiter.begin(account: "alice", address: "203.0.113.9", now: start) == 900)
        #expect(limiter.begin(account: "aLiCe", address: "203.0.113.9", now: start) == 900)
        #expect(limiter.begin(account: "bob", address: "203.0.113.9", now: start) == nil)
    }

    @Test func attemptsCountBeforeTheirOutcome() {
        // Parallel guesses: each is counted when it starts, so the sixth is refused even
        // though no outcome is known yet.
        let limiter = LoginRateLimiter(maxPerAccount: 5, maxPerAddress: 100, window: 900)
        for _ in 0..<5 { #expect(limiter.begin(account: "alice", address: "192.0.2.1", now: start) == nil) }
        #expect(limiter.begin(account: "alice", address: "192.0.2.1", now: start) != nil)
    }

    @Test func addressLimitAcrossAccounts() {
        let limiter = LoginRateLimiter(maxPerAccount: 100, maxPerAddress: 3, window: 60)
        for name in ["a", "b", "c"] { fail(limiter, name, "192.0.2.1", at: start) }
        #expect(limiter.begin(account: "d", address: "192.0.2.1", now: start + 10) == 50)
        #expect(limiter.begin(account: "d", address: "192.0.2.2", now: start + 10) == nil)
    }

    @Test func ipv6AddressesShareTheirSlash64() {
        let limiter = LoginRateLimiter(maxPerAccount: 100, maxPerAddress: 2, window: 60)
        fail(limiter, "a", "2001:db8:1:2::1", at: start)
        fail(limiter, "b", "2001:db8:1:2:ffff:0:0:9", at: start)
        #expect(limiter.begin(account: "c", address: "2001:db8:1:2::77", now: start) != nil)
        #expect(limiter.begin(account: "c", address: "2001:db8:1:3::1", now: start) == nil)
        #expect(LoginRateLimiter.addressKey("192.0.2.1") == "192.0.2.1")
    }

    @Test func windowExpiry() {
        let limiter = LoginRateLimiter(maxPerAccount: 2, maxPerAddress: 100, window: 900)
        fail(limiter, "alice", "x", at: start)
        fail(limiter, "alice", "y", at: start + 100)
        #expect(limiter.begin(account: "alice", address: "z", now: start + 100) == 800)
        #expect(limiter.begin(account: "alice", address: "z", now: start + 100.5) == 800)  // rounded up
        #expect(limiter.begin(account: "alice", address: "z", now: start + 899.2) == 1)
        // After the window a new count starts.
        fail(limiter, "alice", "x", at: start + 900)
        fail(limiter, "alice", "x", at: start + 901)
        #expect(limiter.begin(account: "alice", address: "z", now: start + 902) == 898)
    }

    @Test func successResetsTheAccountAndGivesTheAddressItsAttemptBack() {
        let limiter = LoginRateLimiter(maxPerAccount: 2, maxPerAddress: 3, window: 900)
        fail(limiter, "alice", "192.0.2.1", at: start)
        #expect(limiter.begin(account: "alice", address: "192.0.2.1", now: start) == nil)
        limiter.succeeded(account: "ALICE", address: "192.0.2.1")
        #expect(limiter.begin(account: "alice", address: "192.0.2.9", now: start) == nil)  // account cleared
        // The address kept its one failure; with bob's and carol's attempts it reaches 3.
        fail(limiter, "bob", "192.0.2.1", at: start)
        fail(limiter, "carol", "192.0.2.1", at: start)
        #expect(limiter.begin(account: "dave", address: "192.0.2.1", now: start) == 900)
    }

    @Test func theLongerWaitWins() {
        let limiter = LoginRateLimiter(maxPerAccount: 1, maxPerAddress: 1, window: 600)
        fail(limiter, "alice", "a", at: start)
        fail(limiter, "bob", "b", at: start + 300)
        #expect(limiter.begin(account: "alice", address: "b", now: start + 400) == 500)
    }

    /// A spray of usernames inside one window must not grow the tables without bound (nor
    /// make every attempt rescan them: the table is trimmed by half when full).
    @Test func aSprayOfUsernamesStaysBounded() {
        let limiter = LoginRateLimiter(maxPerAccount: 5, maxPerAddress: 10_000_000, window: 900)
        for index in 0..<(LoginRateLimiter.maxTracked * 2 + 10) {
            _ = limiter.begin(account: "user\(index)", address: "192.0.2.1", now: start + Double(index) / 1000)
        }
        #expect(limiter.trackedAccounts <= LoginRateLimiter.maxTracked)
        // The newest accounts are still counted.
        for _ in 0..<4 { _ = limiter.begin(account: "fresh", address: "192.0.2.1", now: start + 200) }
        #expect(limiter.begin(account: "fresh", address: "192.0.2.1", now: start + 200) == nil)
        #expect(limiter.begin(account: "fresh", address: "192.0.2.1", now: start + 200) != nil)
    }
}

