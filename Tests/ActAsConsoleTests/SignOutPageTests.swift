import ActAsCore
@testable import ActAsPages
import Foundation
import Testing
@testable import ActAsConsole

/// `GET /.actas/logout` (SPEC §4) and where sign-out leads.
@Suite struct SignOutPageTests {
    @Test func signedInGetsOneButtonWithTheTokenAndRd() async throws {
        try await Harness.with { h in
            let (_, principal) = try await h.signIn("alice", "pw-alice")
            let page = await h.send("GET", "/.actas/logout?rd=%2Freports%3Fy%3D1", headers: [("accept", "text/html")], principal: principal)
            #expect(page.status == 200)
            #expect(page.text.components(separatedBy: "<button").count == 2)
            #expect(page.text.contains(#"name="csrf_token" value="\#(principal.session!.csrfToken)""#))
            #expect(page.text.contains(#"name="rd" value="/reports?y=1""#))
            #expect(!page.text.contains("acting as"))
            #expect(page.header("content-security-policy") != nil)
        }
    }

    @Test(arguments: ["//evil.example", "https://evil.example/", "/\\evil", "javascript:alert(1)", "/%2F/evil"])
    func foreignRdBecomesHome(rd: String) async throws {
        try await Harness.with { h in
            let (_, principal) = try await h.signIn("alice", "pw-alice")
            let page = await h.send("GET", "/.actas/logout?rd=\(FormCoding.encode(rd))", principal: principal)
            #expect(page.text.contains(#"name="rd" value="/""#))
            let out = await h.send("POST", "/.actas/logout",
                                   headers: [("origin", "https://app.example.com"), ("content-type", "application/x-www-form-urlencoded")],
                                   body: "csrf_token=\(FormCoding.encode(principal.session!.csrfToken))&rd=\(FormCoding.encode(rd))",
                                   principal: principal)
            #expect(out.status == 303)
            #expect(out.header("location") == "/")
        }
    }

    @Test func signOutGoesToRdOrTheSignInPage() async throws {
        try await Harness.with { h in
            let (_, principal) = try await h.signIn("alice", "pw-alice")
            let out = await h.send("POST", "/.actas/logout",
                                   headers: [("origin", "https://app.example.com"), ("content-type", "application/x-www-form-urlencoded")],
                                   body: "csrf_token=\(FormCoding.encode(principal.session!.csrfToken))&rd=%2Fbye", principal: principal)
            #expect(out.header("location") == "/bye")
            let (_, again) = try await h.signIn("alice", "pw-alice")
            let plain = await h.send("POST", "/.actas/logout",
                                     headers: [("origin", "https://app.example.com"), ("content-type", "application/x-www-form-urlencoded")],
                                     body: "csrf_token=\(FormCoding.encode(again.session!.csrfToken))&rd=", principal: again)
            #expect(plain.header("location") == "/.actas/login")
        }
    }

    @Test func notSignedInMeetsTheSignInRule() async throws {
        try await Harness.with { h in
            let browser = await h.send("GET", "/.actas/logout?rd=%2Fbye", headers: [("accept", "text/html")])
            #expect(browser.status == 302)
            #expect(browser.header("location")?.hasPrefix("/.actas/login?rd=") == true)
            let script = await h.send("GET", "/.actas/logout")
            #expect(script.status == 401)
        }
    }
}

@Suite struct BackLinkTests {
    @Test(arguments: [
        ("https://app.example.com/orders/42?tab=1", "app.example.com", "/orders/42?tab=1"),
        ("https://APP.example.com:443/x#frag", "app.example.com", "/x"),
        ("https://app.example.com:8443/x", "app.example.com:8443", "/x"),
        ("https://app.example.com", "app.example.com", "/"),
        ("https://app.example.com?q=1", "app.example.com", "/?q=1"),
        ("https://app.example.com/a/../b", "app.example.com", "/b"),
    ])
    func sameOriginRefererIsTheWayBack(referer: String, host: String, expected: String) {
        #expect(BackLink.from(referer: referer, host: host) == expected)
    }

    @Test(arguments: [
        ("https://evil.example/x", "app.example.com"),
        ("http://app.example.com/x", "app.example.com"),
        ("https://app.example.com.evil.example/x", "app.example.com"),
        ("https://app.example.com@evil.example/x", "app.example.com"),
        ("https://app.example.com:8443/x", "app.example.com"),
        ("https://app.example.com//evil.example/x", "app.example.com"),
        ("https://app.example.com/\\evil", "app.example.com"),
        ("not a url", "app.example.com"),
        ("", "app.example.com"),
        ("https://app.example.com/x", ""),
    ])
    func anythingElseLeadsHome(referer: String, host: String) {
        #expect(BackLink.from(referer: referer, host: host) == "/")
    }

    @Test func aRefusedGETDoesNotLeadBackToItself() {
        #expect(BackLink.from(referer: "https://a.example/private/x?y=1", host: "a.example", current: "/private/x") == "/")
        #expect(BackLink.from(referer: "https://a.example/admin/add/", host: "a.example", current: nil) == "/admin/add/")
        #expect(BackLink.from(referer: nil, host: "a.example") == "/")
    }
}
