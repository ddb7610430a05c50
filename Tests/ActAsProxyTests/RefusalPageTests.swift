import ActAsPages
import Foundation
import Testing
@testable import ActAsProxy

/// SPEC §7: the proxy's own refusal pages shown while impersonating carry the banner and a link back.
@Suite struct RefusalPageTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let banner = BannerInfo(
        targetName: "Alice <Example>", targetUsername: "alice", mode: .readOnly, sessionID: "imp_1", startedAt: now,
        expiresAt: now.addingTimeInterval(1800), now: now, warnBeforeEnd: 300, csrfToken: "tok", path: "/orders?a=1&b=2")

    @Test func whileImpersonatingThePageCarriesTheBannerAndTheWayBack() {
        let page = ErrorResponse.page(status: 403, message: "This impersonation is read-only.", requestID: "r1",
                                      impersonating: ImpersonationRefusalPage(banner: Self.banner, back: "/orders?a=1&b=2"))
        #expect(page.components(separatedBy: "<actas-banner").count == 2)
        #expect(page.contains("<body><link rel=\"stylesheet\" href=\"/.actas/banner.css\" /><actas-banner"))
        #expect(page.contains(#"<a href="/orders?a=1&amp;b=2" data-actas-back="">Go back</a>"#))
        #expect(page.contains(#"action="/.actas/impersonate/exit""#))
        #expect(page.contains("Alice &lt;Example&gt;"))
        #expect(page.contains("read-only"))
    }

    @Test func otherwiseThePageIsAsBefore() {
        let page = ErrorResponse.page(status: 403, message: "No.", requestID: nil, impersonating: nil)
        #expect(!page.contains("actas-banner"))
        #expect(!page.contains("data-actas-back"))
        #expect(page.contains("<h1>403 Forbidden</h1><p>No.</p>"))
    }
}
