import ActAsHTTP
import Foundation

/// One `Set-Cookie` as a browser keys and keeps it (RFC 6265 §5.2–5.3): the parts the
/// impersonation jar, the pass-through to the browser and the restoration at the end need.
struct SetCookieLine: Equatable {
    var name: String
    var value: String
    /// The `Path` attribute, or the default path of the request (RFC 6265 §5.1.4).
    var path: String
    /// Whether `Path` was written (a restoration writes the same attributes).
    var pathWritten: Bool
    /// The `Domain` attribute as written (nil: host-only).
    var domain: String?
    /// From `Max-Age` (which wins) or `Expires`; nil for a cookie that lasts the browser session.
    var expires: Date?
    var httpOnly: Bool
    var secure: Bool
    var sameSite: String?
    var partitioned: Bool

    enum Refusal: Error, Equatable {
        /// The name is one the proxy owns (SPEC §7: never accepted from the upstream).
        case proxyOwned
        /// Nameless, a name that is not an RFC 6265 token, or a value a Cookie header cannot carry.
        case invalid
    }

    static func parse(_ setCookie: String, requestPath: String, now: Date) -> Result<SetCookieLine, Refusal> {
        let parts = setCookie.split(separator: ";", omittingEmptySubsequences: false)
        let nameBytes = SetCookieName.name(setCookie.utf8)
        if SetCookieName.isProxyOwned(setCookie.utf8) { return .failure(.proxyOwned) }
        guard SetCookieName.isToken(nameBytes), let first = parts.first, let eq = first.firstIndex(of: "=") else { return .failure(.invalid) }
        let value = first[first.index(after: eq)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
        // A value with separators a Cookie header cannot carry would split into other cookies there.
        guard !value.utf8.contains(where: { $0 == UInt8(ascii: ";") || $0 < 0x20 || $0 == 0x7F }) else { return .failure(.invalid) }
        var line = SetCookieLine(
            name: String(decoding: nameBytes, as: UTF8.self), value: value, path: CookieJar.defaultPath(requestPath), pathWritten: false,
            domain: nil, expires: nil, httpOnly: false, secure: false, sameSite: nil, partitioned: false)
        var maxAgeSeen = false
        for attribute in parts.dropFirst() {
            let pair = attribute.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let attributeValue = pair.count == 2 ? pair[1] : ""
            switch (pair.first ?? "").lowercased() {  // "a=1;;" has empty attributes: no pair[0]
            case "path" where attributeValue.hasPrefix("/"):
                line.path = attributeValue
                line.pathWritten = true
            case "domain" where !attributeValue.isEmpty && Self.isAttributeText(attributeValue):
                line.domain = attributeValue
            case "max-age":
                if let seconds = Int(attributeValue) {
                    line.expires = now.addingTimeInterval(TimeInterval(max(seconds, 0)))
                    maxAgeSeen = true
                }
            case "expires" where !maxAgeSeen:
                if let date = CookieJar.httpDate(attributeValue) { line.expires = date }
            case "httponly":
                line.httpOnly = true
            case "secure":
                line.secure = true
            case "samesite" where Self.isAttributeText(attributeValue):
                line.sameSite = attributeValue
            case "partitioned":
                line.partitioned = true
            default:
                break
            }
        }
        return .success(line)
    }

    func isDeletion(now: Date) -> Bool { expires.map { $0 <= now } ?? false }

    /// Visible ASCII without `;`: safe to write back into a `Set-Cookie` attribute.
    static func isAttributeText(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") }
    }
}

/// SPEC §7, the application's script-readable cookies while impersonating: pure decisions.
///
/// Every cookie the application sets during the session is kept in the session's jar, and
/// the jar alone is what the application is sent (never the browser's cookies, so neither the
/// administrator's own values nor anything a script wrote reach it as the target). A cookie
/// set without `HttpOnly` is also let through to the browser under its name, so the page's
/// scripts read it as the app set it (CSRF tokens: Django's `csrftoken`, `XSRF-TOKEN`). The
/// administrator's own values of those names, as their browser sent them before the app's
/// value replaced them, are remembered server-side with the session; at the end, the next
/// response to that browser puts them back, or deletes the app's cookie when there was none.
enum CookiePassThrough {
    /// A cookie in the browser: the same name, path and domain replace each other there.
    struct Key: Hashable {
        var name: String
        var path: String
        var domain: String?
    }

    /// Whether the browser gets this `Set-Cookie` too. `HttpOnly` cookies stay server-side
    /// (scripts cannot read them anyway). A deletion goes through only when the browser holds
    /// the app's value of it from this session: otherwise it would delete the administrator's
    /// own cookie (Django deletes its `HttpOnly` session cookie without the flag).
    static func passes(_ cookie: SetCookieLine, browserHoldsAppValue: Bool, now: Date) -> Bool {
        if cookie.httpOnly { return false }
        if cookie.isDeletion(now: now) { return browserHoldsAppValue }
        return true
    }

    /// The `Set-Cookie` value that undoes a passed-through cookie at the end: the
    /// administrator's own value under the same name, path and domain (lasting as the app's
    /// cookie did, or for the browser session), or a deletion when they had none.
    static func restoration(of key: Key, last: SetCookieLine, own: String?, now: Date) -> String {
        var text = key.name + "=" + (own ?? "")
        if last.pathWritten { text += "; Path=" + key.path }
        if let domain = key.domain { text += "; Domain=" + domain }
        if own != nil {
            if let expires = last.expires, expires > now { text += "; Expires=" + httpDate(expires) }
        } else {
            text += "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        }
        if last.secure { text += "; Secure" }
        if let sameSite = last.sameSite { text += "; SameSite=" + sameSite }
        if last.partitioned { text += "; Partitioned" }
        return text
    }

    /// A browser-sent value that can be written back into a `Set-Cookie` unchanged.
    static func isRestorable(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") }
    }

    /// The Cookie header for the application on a request of the administrator's own (not
    /// impersonating) while the browser may still hold the app's values from an ended session:
    /// those names carry the administrator's own value, or are left out. The proxy's own
    /// cookies are never forwarded. Nil when nothing is left.
    static func administratorCookies(_ browser: [(name: String, value: String)], passedNames: Set<String>, own: [String: String]) -> String? {
        var out: [String] = []
        var replaced: Set<String> = []
        for (name, value) in browser where !SetCookieName.isProxyOwnedName(Array(name.utf8)) {
            if passedNames.contains(name) {
                guard replaced.insert(name).inserted, let mine = own[name] else { continue }
                out.append(name + "=" + mine)
            } else {
                out.append(name.isEmpty ? value : name + "=" + value)
            }
        }
        return out.isEmpty ? nil : out.joined(separator: "; ")
    }

    /// `name=value` pairs of every Cookie field of a request, in order (pairs without `=`
    /// have an empty name, as browsers treat them).
    static func browserCookies(_ fields: [(String, String)]) -> [(name: String, value: String)] {
        browserCookies(values: fields.lazy.filter { $0.0.utf8.count == 6 && $0.0.lowercased() == "cookie" }.map(\.1))
    }

    /// The pairs of the given Cookie field values, split as the request path splits them
    /// (`RequestCredentials.forEachCookie`; Foundation's trimming cost 16 µs an impersonated request).
    static func browserCookies<Values: Sequence<String>>(values: Values) -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        for var value in values {
            value.withUTF8 { utf8 in
                let raw = UnsafeRawBufferPointer(utf8)
                RequestCredentials.forEachCookie(raw, 0..<raw.count) { name, value in
                    pairs.append((String(decoding: UnsafeRawBufferPointer(rebasing: raw[name]), as: UTF8.self),
                                  String(decoding: UnsafeRawBufferPointer(rebasing: raw[value]), as: UTF8.self)))
                }
            }
        }
        return pairs
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}
