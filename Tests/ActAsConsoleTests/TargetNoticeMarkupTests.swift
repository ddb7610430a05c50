import ActAsCore
@testable import ActAsPages
import Foundation
import Testing

/// SPEC §10.5's notice as the proxy inserts it into the target's pages.
@Suite("Target notice markup")
struct TargetNoticeMarkupTests {
    static let started = Date(timeIntervalSince1970: 1_800_000_000 + 3 * 3600 + 7 * 60 + 59)  // 2027-01-15 11:07:59 UTC

    static func notice(name: String = "Ada Admin", username: String = "ada", reason: String = "Ticket 4711", revocable: Bool = false) -> TargetNotice {
        TargetNotice(sessionID: "imp_01", actorName: name, actorUsername: username, startedAt: started, reason: reason, consentRevocable: revocable)
    }

    /// The visible text: tags dropped, the few references we emit decoded.
    static func text(_ html: String) -> String {
        let stripped = html.replacingOccurrences(of: "<[^>]+>", with: "", options: .regularExpression)
        return stripped.replacingOccurrences(of: "&#x2014;", with: "\u{2014}").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&amp;", with: "&")
    }

    @Test func theSentenceTheLinkAndTheEndForm() {
        let html = TargetNotice.html([Self.notice()], csrfToken: "tok-1", path: "/orders/42?tab=open")
        #expect(Self.text(html) == "Ada Admin (ada) is acting as you since 11:07 \u{2014} reason: Ticket 4711 \u{2014} See what they do \u{2014} End it now")
        #expect(html.hasPrefix("<actas-notice "))
        #expect(html.contains("<a href=\"/.actas/sessions/imp_01\""))
        #expect(html.contains("<form method=\"post\" action=\"/.actas/sessions/imp_01/end\""))
        #expect(html.contains("<input type=\"hidden\" name=\"csrf_token\" value=\"tok-1\" />"))
        #expect(html.contains("<input type=\"hidden\" name=\"rd\" value=\"/orders/42?tab=open\" />"))
        #expect(html.contains("<time datetime=\"2027-01-15T11:07:59"))
        #expect(!html.contains("Revoke consent") && !html.contains("<script"))
    }

    @Test func revokeConsentPostsToTheSameSessionWithTheField() {
        let html = TargetNotice.html([Self.notice(revocable: true)], csrfToken: "tok-1", path: "/")
        #expect(Self.text(html).hasSuffix("End it now Revoke consent"))
        #expect(html.contains("<input type=\"hidden\" name=\"consent\" value=\"revoke\" /><button type=\"submit\""))
        #expect(html.components(separatedBy: "action=\"/.actas/sessions/imp_01/end\"").count == 3)
    }

    @Test func attackerChosenTextIsEscapedAndAsciiOnly() {
        let name = "<img src=x onerror=alert(1)>\"'&"
        let reason = "</actas-notice><script>alert('r')</script> \u{2603} \u{202E}"
        let html = TargetNotice.html([Self.notice(name: name, username: "x\"><b>", reason: reason)], csrfToken: "\"><script>", path: "//evil.example/")
        #expect(!html.contains("<img") && !html.contains("<script") && !html.contains("<b>") && !html.contains("</actas-notice><"))
        #expect(html.allSatisfy { $0.isASCII })
        #expect(html.contains("&#x2603;") && html.contains("&#x202E;"))
        #expect(html.contains("name=\"rd\" value=\"/\""))  // not a same-origin path: back to /
        #expect(html.components(separatedBy: "</actas-notice>").count == 2)
    }

    @Test func oneLinePerSessionAndNothingForNone() {
        var second = Self.notice(name: "Bea", username: "bea")
        second.sessionID = "imp_02"
        let html = TargetNotice.html([Self.notice(), second], csrfToken: "t", path: "/")
        #expect(html.components(separatedBy: "<actas-line ").count == 3)
        #expect(html.contains("/.actas/sessions/imp_02/end"))
        #expect(TargetNotice.html([], csrfToken: "t", path: "/").isEmpty)
    }
}
