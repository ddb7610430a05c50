import ActAsCore
import ActAsPages
import Foundation

/// What the session's audit page shows of a long log: the reader may hide static assets and
/// paths matching patterns, and reads it a page at a time. Set by the page's query (a plain GET
/// form, so it works without JavaScript): `assets=hide`, `exclude=/static/*, *.map`, `page=2`.
public struct AuditView: Sendable, Equatable {
    public static let pageSize = 100
    /// Characters of a parameter or body shown before the rest folds into "show all".
    public static let previewLength = 160
    static let maxPatterns = 20

    public var hideAssets: Bool
    /// `*` matches any characters, `/` included, as in `public_paths`.
    public var excludePatterns: [String]
    /// 1-based, as asked; `window(total:)` clamps it.
    public var page: Int

    public init(hideAssets: Bool = false, excludePatterns: [String] = [], page: Int = 1) {
        self.hideAssets = hideAssets
        self.excludePatterns = excludePatterns
        self.page = page
    }

    public init(query: [(String, String)]) {
        let value = { (name: String) in query.last { $0.0 == name }?.1 }
        hideAssets = value("assets") == "hide"
        excludePatterns = Self.patterns(value("exclude") ?? "")
        page = max(1, Int(value("page") ?? "") ?? 1)
    }

    /// Comma- or whitespace-separated patterns; a pattern without `/` or `*` (`.map`, `png`)
    /// is taken as a file ending.
    static func patterns(_ text: String) -> [String] {
        let pieces = text.split { $0 == "," || $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }.map(String.init)
        return Array(pieces.prefix(maxPatterns))
    }

    var matchers: [PathPattern] {
        excludePatterns.map { pattern in
            pattern.contains("*") || pattern.hasPrefix("/") ? PathPattern(pattern) : PathPattern("*" + pattern)
        }
    }

    /// Whether a log record is shown. Only requests are ever hidden: events (denials, the
    /// session's start and end) always show.
    public func shows(type: String, path: String, requestHeaders: [String: String]) -> Bool {
        guard type == "request" else { return true }
        if hideAssets && Self.isStaticAsset(path: path, requestHeaders: requestHeaders) { return false }
        let bare = String(path.prefix { $0 != "?" })
        return !matchers.contains { $0.matches(bare) }
    }

    /// A style sheet, script, image, font or media file. The log has the request, not the
    /// response, so this reads what the browser asked for: `Sec-Fetch-Dest`, else an `Accept`
    /// naming only such types, else the file's ending.
    public static func isStaticAsset(path: String, requestHeaders: [String: String]) -> Bool {
        if let dest = requestHeaders["sec-fetch-dest"]?.lowercased(), !dest.isEmpty {
            if assetDestinations.contains(dest) { return true }
            if dest == "document" || dest == "iframe" || dest == "frame" { return false }
        }
        if let accept = requestHeaders["accept"]?.lowercased(), !accept.isEmpty {
            let types = accept.split(separator: ",").map { $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
            if !types.isEmpty, types.allSatisfy({ type in
                assetTypePrefixes.contains { type.hasPrefix($0) } || type == "*/*"
            }), !types.allSatisfy({ $0 == "*/*" }) {
                return true
            }
        }
        let bare = path.prefix { $0 != "?" }
        guard let dot = bare.lastIndex(of: "."), !bare[dot...].contains("/") else { return false }
        return assetExtensions.contains(bare[bare.index(after: dot)...].lowercased())
    }

    static let assetDestinations: Set<String> = [
        "style", "script", "image", "font", "audio", "video", "track", "manifest", "worker", "sharedworker", "serviceworker",
        "audioworklet", "paintworklet", "xslt",
    ]
    static let assetTypePrefixes = ["text/css", "image/", "font/", "audio/", "video/", "application/javascript", "text/javascript"]
    static let assetExtensions: Set<String> = [
        "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "bmp", "woff", "woff2", "ttf", "otf",
        "eot", "mp3", "mp4", "webm", "ogg", "wav",
    ]

    /// The rows of this page among `total` shown rows, with the page clamped to what exists.
    public func window(total: Int) -> (range: Range<Int>, page: Int, pages: Int) {
        let pages = max(1, (total + Self.pageSize - 1) / Self.pageSize)
        let page = min(self.page, pages)
        let start = (page - 1) * Self.pageSize
        return (start..<min(total, start + Self.pageSize), page, pages)
    }

    /// The query of a link to `page` with the same filters.
    public func query(page: Int) -> String {
        var items: [(String, String)] = []
        if hideAssets { items.append(("assets", "hide")) }
        if !excludePatterns.isEmpty { items.append(("exclude", excludePatterns.joined(separator: ", "))) }
        if page > 1 { items.append(("page", String(page))) }
        return items.map { "\($0.0)=\(FormCoding.encode($0.1))" }.joined(separator: "&")
    }

    /// A long value cut for its table cell: (preview, whether something was cut).
    public static func preview(_ text: String) -> (String, Bool) {
        guard text.count > previewLength else { return (text, false) }
        return (String(text.prefix(previewLength)) + "\u{2026}", true)
    }
}
