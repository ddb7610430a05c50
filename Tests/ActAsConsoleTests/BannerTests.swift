import ActAsCore
@testable import ActAsPages
import Foundation
import Testing
@testable import ActAsConsole

private let start = Date(timeIntervalSince1970: 1_750_000_000)

private func info(name: String = "Alice Example", username: String = "alice", mode: ImpersonationMode = .readWrite,
                  elapsed: TimeInterval = 600, left: TimeInterval, warn: TimeInterval = 60, csrf: String = "tok-123_ABC",
                  path: String = "/orders/42?tab=open", extendable: Bool = true) -> BannerInfo {
    let now = start.addingTimeInterval(elapsed)
    return BannerInfo(targetName: name, targetUsername: username, mode: mode, sessionID: "imp_01",
                      startedAt: start, expiresAt: now.addingTimeInterval(left), now: now, warnBeforeEnd: warn,
                      csrfToken: csrf, path: path, extendable: extendable)
}

/// One start tag: name and attributes, as a browser would tokenise our (always double-quoted) markup.
private struct Tag {
    var name: String
    var attributes: [(name: String, value: String)]
    func value(_ attribute: String) -> String? { attributes.first { $0.name == attribute }?.value }
}

/// A small HTML tokenizer for start tags: enough to tell whether anything escaped its text or
/// attribute. Values are returned decoded.
private func startTags(_ html: String) -> [Tag] {
    var tags: [Tag] = []
    let s = Array(html.unicodeScalars)
    var i = 0
    func isNameChar(_ c: Unicode.Scalar) -> Bool { !(c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{C}" || c == "/" || c == ">" || c == "=") }
    while i < s.count {
        guard s[i] == "<", i + 1 < s.count, s[i + 1].properties.isAlphabetic else { i += 1; continue }
        i += 1
        var name = ""
        while i < s.count, isNameChar(s[i]) { name.unicodeScalars.append(s[i]); i += 1 }
        var attributes: [(String, String)] = []
        while i < s.count, s[i] != ">" {
            if !isNameChar(s[i]) { i += 1; continue }
            var attribute = ""
            while i < s.count, isNameChar(s[i]) { attribute.unicodeScalars.append(s[i]); i += 1 }
            var value = ""
            if i < s.count, s[i] == "=" {
                i += 1
                if i < s.count, s[i] == "\"" || s[i] == "'" {
                    let quote = s[i]
                    i += 1
                    while i < s.count, s[i] != quote { value.unicodeScalars.append(s[i]); i += 1 }
                    i += 1
                } else {
                    while i < s.count, isNameChar(s[i]) || s[i] == "=" { value.unicodeScalars.append(s[i]); i += 1 }
                }
            }
            attributes.append((attribute.lowercased(), decode(value)))
        }
        tags.append(Tag(name: name.lowercased(), attributes: attributes))
        i += 1
    }
    return tags
}

private func decode(_ text: String) -> String {
    var out = ""
    var rest = Substring(text)
    while let amp = rest.firstIndex(of: "&") {
        out += rest[..<amp]
        rest = rest[amp...]
        guard let semi = rest.firstIndex(of: ";") else { break }
        let entity = rest[rest.index(after: rest.startIndex)..<semi]
        var scalar: Unicode.Scalar?
        switch entity {
        case "amp": scalar = "&"
        case "lt": scalar = "<"
        case "gt": scalar = ">"
        case "quot": scalar = "\""
        default:
            if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16) { scalar = Unicode.Scalar(v) }
            else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst(1)) { scalar = Unicode.Scalar(v) }
        }
        if let scalar { out.unicodeScalars.append(scalar); rest = rest[rest.index(after: semi)...] }
        else { out += "&"; rest = rest.dropFirst() }
    }
    return out + rest
}

/// What a reader sees: tags removed, references decoded, whitespace collapsed.
private func visibleText(_ html: String) -> String {
    var stripped = ""
    var inTag = false
    var quote: Character?
    for c in html {
        if inTag {
            if let q = quote { if c == q { quote = nil } }
            else if c == "\"" { quote = c }
            else if c == ">" { inTag = false }
        } else if c == "<" {
            inTag = true
        } else {
            stripped.append(c)
        }
    }
    return decode(stripped).split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
}

/// The contents of the element that starts with `opening` (first match) up to its end tag.
private func element(_ html: String, startingWith opening: String, end: String) -> String? {
    guard let from = html.range(of: opening), let to = html.range(of: end, range: from.upperBound..<html.endIndex) else { return nil }
    return String(html[from.lowerBound..<to.upperBound])
}

@Suite("Impersonation banner")
struct BannerTests {
    static let hostileNames = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "\"\u{301} onmouseover=\"alert(1)",
        "' autofocus onfocus='alert(1)",
        "</actas-label></actas-banner><script>alert(1)</script>",
        "&lt;script&gt; \u{202E}nimda",
    ]

    @Test(arguments: hostileNames)
    func hostileNamesStayText(name: String) {
        let html = Banner.html(info(name: name, username: "mallory", left: 65))
        #expect(!html.lowercased().contains("<img"))
        #expect(!html.contains("<script>"))
        #expect(html.components(separatedBy: "<script").count == 2) // only our own, external one
        #expect(!html.contains("</actas-label></actas-banner><script"))
        #expect(html.unicodeScalars.allSatisfy { $0.isASCII }, "markup is ASCII whatever the page charset")
        // Nothing broke out of an attribute or created one: every tag and attribute is ours.
        let tags = startTags(html)
        #expect(Set(tags.map(\.name)).isSubset(of: [
            "link", "actas-banner", "actas-label", "actas-name", "actas-user", "actas-mode", "actas-sep", "actas-time",
            "form", "input", "button", "actas-note", "actas-status", "script",
        ]))
        for tag in tags {
            for attribute in tag.attributes {
                #expect(!attribute.name.hasPrefix("on"), "\(tag.name) has \(attribute.name)")
                #expect(["role", "aria-label", "aria-hidden", "aria-live", "aria-atomic", "style", "rel", "href", "dir", "method",
                         "action", "type", "name", "value", "src", "defer"].contains(attribute.name)
                        || attribute.name.hasPrefix("data-"), "\(tag.name) has \(attribute.name)")
            }
        }
        // And the name reads back exactly, combining marks and all.
        #expect(visibleText(html).contains("You are acting as \(name) (mallory) \u{2014} 01:05 left"))
    }

    @Test func quoteWithCombiningMarkIsEscapedPerScalar() {
        let html = Banner.html(info(name: "\"\u{301}x", left: 65))
        #expect(html.contains("&quot;&#x301;x"))
        let raw = "\"\u{301}"
        #expect(html.range(of: raw) == nil)
        #expect(!html.unicodeScalars.contains("\u{301}"))
    }

    @Test func visibleTextFollowsTheSpec() {
        let text = visibleText(Banner.html(info(left: 65)))
        #expect(text == "You are acting as Alice Example (alice) \u{2014} 01:05 left \u{2014} Exit")
    }

    @Test func readOnlyIsShownOnlyWhenItIs() {
        let readOnly = Banner.html(info(mode: .readOnly, left: 65))
        #expect(visibleText(readOnly) == "You are acting as Alice Example (alice) \u{2014} 01:05 left \u{2014} Exit read-only")
        #expect(readOnly.contains("data-mode=\"read-only\""))
        let readWrite = Banner.html(info(mode: .readWrite, left: 65))
        #expect(!readWrite.contains("read-only"))
        #expect(readWrite.contains("data-mode=\"read-write\""))
    }

    @Test func nameMissingOrSameAsUsername() {
        #expect(visibleText(Banner.html(info(name: "", left: 65))).hasPrefix("You are acting as alice \u{2014} 01:05 left"))
        #expect(visibleText(Banner.html(info(name: "alice", left: 65))).hasPrefix("You are acting as alice \u{2014} 01:05 left"))
    }

    @Test(arguments: [
        (65.0, "01:05"), (3700, "61:40"), (3600, "60:00"), (3599, "59:59"), (86400, "1440:00"), (59.2, "01:00"), (0.01, "00:01"),
        (0, "00:00"), (-30, "00:00"), (36_000, "600:00"), (90_061, "1501:01"), (.nan, "00:00"),
    ] as [(TimeInterval, String)])
    func remainingText(seconds: TimeInterval, expected: String) {
        #expect(Banner.remainingText(seconds) == expected)
    }

    @Test(arguments: [(65.0, "01:05 left"), (3700, "61:40 left"), (1800.5, "30:01 left")] as [(TimeInterval, String)])
    func countdownIsServerRendered(left: TimeInterval, expected: String) {
        let html = Banner.html(info(left: left, warn: 60))
        let timer = element(html, startingWith: "<actas-time", end: "</actas-time>")
        #expect(timer.map(visibleText) == expected)
        #expect(timer?.contains("role=\"timer\"") == true)
        #expect(timer?.contains("aria-live=\"off\"") == true, "the ticking part is not announced")
    }

    @Test func exitIsARealFormWithTokenAndReturnPath() throws {
        let html = Banner.html(info(left: 900))
        let form = try #require(element(html, startingWith: "<form method=\"post\" action=\"/.actas/impersonate/exit\"", end: "</form>"))
        let tags = startTags(form)
        let inputs = tags.filter { $0.name == "input" }
        #expect(inputs.contains { $0.value("type") == "hidden" && $0.value("name") == "csrf_token" && $0.value("value") == "tok-123_ABC" })
        #expect(inputs.contains { $0.value("type") == "hidden" && $0.value("name") == "rd" && $0.value("value") == "/orders/42?tab=open" })
        #expect(tags.contains { $0.name == "button" && $0.value("type") == "submit" })
        #expect(visibleText(form) == "Exit")
        #expect(!form.contains("tabindex"), "native button, in the tab order")
    }

    @Test(arguments: ["//evil.example/x", "https://evil.example/", "javascript:alert(1)", "/\\evil"])
    func foreignReturnPathsFallBack(path: String) {
        let tags = startTags(Banner.html(info(left: 900, path: path)))
        #expect(tags.filter { $0.value("name") == "rd" }.allSatisfy { $0.value("value") == "/" })
    }

    @Test func tokenAndSessionAreEscapedInAttributes() {
        var banner = info(left: 100, warn: 300, csrf: "a\"b<c>'d", path: "/x")
        banner.sessionID = "s\"><script>"
        let html = Banner.html(banner)
        let tags = startTags(html)
        #expect(tags.first { $0.name == "actas-banner" }?.value("data-session") == "s\"><script>")
        #expect(tags.filter { $0.value("name") == "csrf_token" }.allSatisfy { $0.value("value") == "a\"b<c>'d" })
        #expect(tags.filter { $0.value("name") == "csrf_token" }.count == 2, "exit and extend")
    }

    @Test func extendIsOfferedOnlyWithinWarnBeforeEnd() throws {
        for left in [301.0, 300, 3600] {
            let html = Banner.html(info(left: left, warn: 300))
            #expect(!html.contains("/.actas/impersonate/extend"), "left \(left)")
            #expect(!visibleText(html).contains("Extend"))
            #expect(html.contains("data-state=\"active\""))
        }
        let html = Banner.html(info(elapsed: 600, left: 299, warn: 300))
        #expect(html.contains("data-state=\"warn\""))
        let form = try #require(element(html, startingWith: "<form method=\"post\" action=\"/.actas/impersonate/extend\"", end: "</form>"))
        let inputs = startTags(form).filter { $0.name == "input" }
        #expect(inputs.contains { $0.value("name") == "csrf_token" && $0.value("value") == "tok-123_ABC" })
        #expect(inputs.contains { $0.value("name") == "rd" && $0.value("value") == "/orders/42?tab=open" })
        // Durations count from the original start: elapsed 600 s + an hour.
        #expect(inputs.contains { $0.value("name") == "duration" && $0.value("value") == "4200s" })
        #expect(DurationText.seconds("4200s") == 4200)
        #expect(startTags(form).contains { $0.name == "button" && $0.value("type") == "submit" })
        #expect(visibleText(html).hasSuffix("\u{2014} 04:59 left \u{2014} Exit Extend"))
        // At the cap: nothing to offer.
        #expect(!Banner.html(info(left: 100, warn: 300, extendable: false)).contains("/.actas/impersonate/extend"))
    }

    @Test func noInlineScriptOrHandlers() {
        for banner in [info(left: 65), info(mode: .readOnly, left: 10_000), info(left: 10, warn: 300)] {
            let html = Banner.html(banner)
            let scripts = startTags(html).filter { $0.name == "script" }
            #expect(scripts.count == 1)
            #expect(scripts.first?.value("src") == "/.actas/banner.js")
            #expect(scripts.first?.value("defer") != nil)
            #expect(html.hasSuffix("<script src=\"/.actas/banner.js\" defer=\"defer\"></script>"))
            #expect(html.components(separatedBy: "</script>").count == 2)
            #expect(startTags(html).allSatisfy { $0.attributes.allSatisfy { !$0.name.hasPrefix("on") } })
            #expect(!html.lowercased().contains("javascript:"))
        }
    }

    @Test func landmarkAndDataForTheScript() throws {
        let html = Banner.html(info(elapsed: 600, left: 65, warn: 300))
        let tags = startTags(html)
        #expect(tags.first?.name == "link" && tags.first?.value("href") == "/.actas/banner.css")
        let host = try #require(tags.first { $0.name == "actas-banner" })
        #expect(host.value("role") == "region")
        #expect(host.value("aria-label") == "Impersonation")
        #expect(host.value("data-expires") == String(Int64((start.timeIntervalSince1970 + 665) * 1000)))
        #expect(host.value("data-started") == String(Int64(start.timeIntervalSince1970 * 1000)))
        #expect(host.value("data-now") == String(Int64((start.timeIntervalSince1970 + 600) * 1000)))
        #expect(host.value("data-warn") == "300")
        #expect(host.value("data-extend") == "3600")
        #expect(host.value("data-session") == "imp_01")
        let status = try #require(tags.first { $0.name == "actas-status" })
        #expect(status.value("role") == "status" && status.value("aria-live") == "polite")
        // Fixed at the top, above everything, whatever the page's CSS says.
        let style = try #require(host.value("style"))
        for declaration in ["all:initial!important", "position:fixed!important", "top:0!important", "left:0!important",
                            "right:0!important", "z-index:2147483647!important", "height:\(Banner.height)px!important"] {
            #expect(style.contains(declaration))
        }
        for tag in tags where !["link", "input", "script"].contains(tag.name) {
            #expect(tag.value("style")?.contains("!important") == true, "\(tag.name) is styled inline")
        }
        // Children start from `all: unset`, except buttons, which keep the browser's focus ring.
        for tag in tags where tag.name.hasPrefix("actas-") && tag.name != "actas-banner" {
            #expect(tag.value("style")?.hasPrefix("all:unset!important") == true)
        }
        for button in tags where button.name == "button" {
            #expect(button.value("style")?.contains("outline") == false)
            #expect(button.value("style")?.contains("visibility:visible!important") == true)
        }
    }

    @Test func withoutInlineStylesForStrictCSP() {
        var banner = info(left: 100, warn: 300)
        banner.inlineStyles = false
        let html = Banner.html(banner)
        #expect(!html.contains("style="))
        #expect(visibleText(html) == "You are acting as Alice Example (alice) \u{2014} 01:40 left \u{2014} Exit Extend")
        #expect(startTags(html).first?.value("href") == "/.actas/banner.css", "the stylesheet carries the styling")
        #expect(Banner.html(info(left: 100)).components(separatedBy: "style=\"").count > 10)
    }

    @Test func coloursMeetWCAGAA() {
        func luminance(_ hex: String) -> Double {
            let value = Int(hex.dropFirst(), radix: 16)!
            let channels = [(value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF].map { Double($0) / 255 }
            let linear = channels.map { $0 <= 0.04045 ? $0 / 12.92 : pow(($0 + 0.055) / 1.055, 2.4) }
            return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
        }
        func ratio(_ a: String, _ b: String) -> Double {
            let (x, y) = (luminance(a), luminance(b))
            return (max(x, y) + 0.05) / (min(x, y) + 0.05)
        }
        #expect(ratio(Banner.ink, Banner.amber) >= 4.5)
        #expect(ratio(Banner.ink, "#ffffff") >= 4.5)
        #expect(Banner.Part.host.inline.contains("background:\(Banner.amber)!important"))
        #expect(Banner.Part.host.inline.contains("color:\(Banner.ink)!important"))
    }

    // MARK: assets

    @Test func scriptIsSelfContainedAndSameOrigin() throws {
        let js = Banner.bannerJS
        let trimmed = js.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(trimmed.contains("\n(function () {\n"))
        #expect(trimmed.hasSuffix("})();"), "an IIFE: no globals")
        #expect(js.contains("'use strict'"))
        #expect(js.contains("attachShadow("))
        #expect(js.contains("'/.actas/banner.css'"))
        #expect(js.contains("window.fetch('/.actas/api/v1/me'"))
        #expect(js.contains("window.fetch('/.actas/api/v1/impersonation'"))
        #expect(js.contains("method: 'PATCH'"))
        #expect(js.contains("'X-CSRF-Token': token"))
        #expect(js.contains("credentials: 'same-origin'"))
        #expect(js.contains("setInterval(poll, 15000)"))
        // Only same-origin URLs: no scheme, no protocol-relative address.
        #expect(!js.contains("://"))
        #expect(!js.contains("'//"))
        for literal in js.components(separatedBy: "'").enumerated().filter({ $0.offset % 2 == 1 }).map(\.element)
        where literal.hasPrefix("/") && literal != "/" {
            #expect(literal.hasPrefix("/.actas/"), "\(literal)")
        }
        for banned in ["eval(", "innerHTML", "outerHTML", "document.write", "new Function", "insertAdjacentHTML", "=>", "let ", "const "] {
            #expect(!js.contains(banned), "\(banned)")
        }
    }

    @Test func stylesheetFixesTheBarAndReservesItsSpace() {
        let css = Banner.bannerCSS
        #expect(css.contains("html{padding-top:\(Banner.height)px!important"))
        for selector in ["actas-banner{", ":host{"] {
            let rule = css.components(separatedBy: "\n").first { $0.hasPrefix(selector) } ?? ""
            for declaration in ["position:fixed!important", "top:0!important", "left:0!important", "right:0!important",
                                "z-index:2147483647!important", "height:\(Banner.height)px!important"] {
                #expect(rule.contains(declaration), "\(selector) \(declaration)")
            }
        }
        #expect(css.contains(":focus-visible{outline:3px solid \(Banner.ink)!important"))
        #expect(css.contains("actas-banner form[data-actas=\"exit\"],form[data-actas=\"exit\"]{all:unset!important;display:flex!important"))
        #expect(!css.contains("url("))
        #expect(!css.contains("@import"))
        // Braces balance: one bad rule would silently drop the rest.
        #expect(css.filter { $0 == "{" }.count == css.filter { $0 == "}" }.count)
    }
}
