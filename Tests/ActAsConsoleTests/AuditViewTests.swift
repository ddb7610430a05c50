import Testing
@testable import ActAsConsole

/// The session's audit page: filters, pages, folded long values.
@Suite struct AuditViewTests {
    @Test func readsItsQuery() {
        let view = AuditView(query: [("assets", "hide"), ("exclude", "/static/*, .map\n/favicon.ico"), ("page", "3")])
        #expect(view == AuditView(hideAssets: true, excludePatterns: ["/static/*", ".map", "/favicon.ico"], page: 3))
        #expect(AuditView(query: [("page", "-4")]).page == 1)
        #expect(AuditView(query: [("page", "x")]).page == 1)
        #expect(AuditView(query: [("assets", "show")]).hideAssets == false)
        #expect(AuditView(query: [("exclude", String(repeating: "/a* ", count: 100))]).excludePatterns.count == AuditView.maxPatterns)
    }

    @Test(arguments: [
        ("/static/app.css", [String: String](), true),
        ("/x", ["sec-fetch-dest": "style"], true),
        ("/x", ["sec-fetch-dest": "image"], true),
        ("/x", ["sec-fetch-dest": "font"], true),
        ("/img/logo.PNG?v=2", [:], true),
        ("/x", ["accept": "image/avif,image/webp,image/*,*/*;q=0.8"], true),
        ("/x", ["accept": "text/css,*/*;q=0.1"], true),
        ("/reports/2026.css", ["sec-fetch-dest": "document"], false),
        ("/orders/1", ["sec-fetch-dest": "document", "accept": "text/html"], false),
        ("/api/orders", ["sec-fetch-dest": "empty", "accept": "*/*"], false),
        ("/api/orders", ["accept": "application/json"], false),
        ("/v1.2/orders", [:], false),
        ("/download?file=a.png", [:], false),
    ])
    func staticAssets(path: String, headers: [String: String], expected: Bool) {
        #expect(AuditView.isStaticAsset(path: path, requestHeaders: headers) == expected)
    }

    @Test func hidesOnlyRequests() {
        let view = AuditView(hideAssets: true, excludePatterns: ["/health*", ".map"])
        #expect(!view.shows(type: "request", path: "/app.js", requestHeaders: [:]))
        #expect(!view.shows(type: "request", path: "/healthz?full=1", requestHeaders: [:]))
        #expect(!view.shows(type: "request", path: "/bundle.js.map", requestHeaders: [:]))
        #expect(view.shows(type: "request", path: "/orders", requestHeaders: [:]))
        #expect(view.shows(type: "request_denied", path: "/app.js", requestHeaders: [:]))
        #expect(view.shows(type: "impersonation_ended", path: "", requestHeaders: [:]))
    }

    @Test func pagesClampAndKeepTheFilter() {
        let view = AuditView(hideAssets: true, excludePatterns: ["/a b*"], page: 9)
        let window = view.window(total: 250)
        #expect(window.page == 3 && window.pages == 3 && window.range == 200..<250)
        #expect(AuditView().window(total: 0) == (0..<0, 1, 1))
        #expect(AuditView(page: 2).window(total: 100).page == 1)
        #expect(view.query(page: 2) == "assets=hide&exclude=/a%20b%2A&page=2")
        #expect(AuditView().query(page: 1) == "")
    }

    @Test func longValuesFold() {
        #expect(AuditView.preview("short") == ("short", false))
        let long = String(repeating: "x", count: AuditView.previewLength + 1)
        let (preview, cut) = AuditView.preview(long)
        #expect(cut && preview.count == AuditView.previewLength + 1 && preview.hasSuffix("\u{2026}"))
    }

    @Test func aRowFoldsItsLongBodyAndLeavesEmptyCellsEmpty() {
        let row = Console.auditRow(["type": "request", "method": "POST", "path": "/o", "status": 201,
                                    "request_body": ["title": String(repeating: "y", count: 400)]])
        let body = row["body"] as? [String: Any]
        #expect(body?["cut"] as? Bool == true)
        #expect((body?["full"] as? String)?.contains("\n") == true)  // pretty-printed
        #expect(row["query"] == nil)
    }
}
