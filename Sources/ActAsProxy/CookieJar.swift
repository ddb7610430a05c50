import ActAsHTTP
import Foundation
import Synchronization

/// Cookies the application sets during an impersonation session, kept on the proxy (SPEC §7):
/// they never reach the administrator's browser, are sent only within that session, and
/// vanish with it. The administrator's own cookies for the app stay in their browser,
/// withheld while impersonating and untouched after.
final class CookieJar: Sendable {
    struct Cookie: Sendable {
        var name: String
        var value: String
        var path: String
        var expires: Date?
    }

    private let cookies = Mutex<[Cookie]>([])
    /// An application setting more than this many cookies in one session loses the oldest.
    static let maxCookies = 200

    /// What became of a `Set-Cookie`.
    enum Outcome: Equatable {
        case stored
        /// The name is one the proxy owns (SPEC §7: never accepted from the upstream).
        case refusedProxyOwned
        /// Nameless, or a name that is not an RFC 6265 token: a browser would keep it under
        /// a name other than the one the app meant, and it could not be sent back unambiguously.
        case refusedInvalidName
    }

    /// Applies one `Set-Cookie` value (RFC 6265 §5.2, the parts a single-host jar needs).
    @discardableResult
    func store(_ setCookie: String, requestPath: String, now: Date) -> Outcome {
        let parts = setCookie.split(separator: ";", omittingEmptySubsequences: false)
        let nameBytes = SetCookieName.name(setCookie.utf8)
        if SetCookieName.isProxyOwnedName(nameBytes) { return .refusedProxyOwned }
        guard SetCookieName.isToken(nameBytes), let first = parts.first, let eq = first.firstIndex(of: "=") else { return .refusedInvalidName }
        let name = String(decoding: nameBytes, as: UTF8.self)
        let value = first[first.index(after: eq)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
        // A value with separators a Cookie header cannot carry would split into other cookies there.
        guard !value.utf8.contains(where: { $0 == UInt8(ascii: ";") || $0 < 0x20 || $0 == 0x7F }) else { return .refusedInvalidName }
        var path = Self.defaultPath(requestPath)
        var expires: Date?
        var maxAgeSeen = false
        for attribute in parts.dropFirst() {
            let pair = attribute.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            switch (pair.first ?? "").lowercased() {  // "a=1;;" has empty attributes: no pair[0]
            case "path" where pair.count == 2 && pair[1].hasPrefix("/"):
                path = pair[1]
            case "max-age" where pair.count == 2:
                if let seconds = Int(pair[1]) {
                    expires = now.addingTimeInterval(TimeInterval(seconds))
                    maxAgeSeen = true
                }
            case "expires" where pair.count == 2 && !maxAgeSeen:
                expires = Self.httpDate(pair[1])
            default:
                break
            }
        }
        let cookie = Cookie(name: name, value: value, path: path, expires: expires)
        cookies.withLock { cookies in
            cookies.removeAll { $0.name == name && $0.path == path }
            if let expires, expires <= now { return }  // a deletion
            cookies.append(cookie)
            if cookies.count > Self.maxCookies { cookies.removeFirst(cookies.count - Self.maxCookies) }
        }
        return .stored
    }

    /// `name=value; …` for a request to `path`, longest paths first (RFC 6265 §5.4); nil if none.
    func header(for path: String, now: Date) -> String? {
        cookies.withLock { cookies in
            cookies.removeAll { $0.expires.map { $0 <= now } ?? false }
            let matching = cookies.filter { Self.pathMatches(path, $0.path) }.sorted { $0.path.count > $1.path.count }
            return matching.isEmpty ? nil : matching.map { "\($0.name)=\($0.value)" }.joined(separator: "; ")
        }
    }

    static func defaultPath(_ requestPath: String) -> String {
        guard requestPath.hasPrefix("/"), let slash = requestPath.lastIndex(of: "/"), slash != requestPath.startIndex else { return "/" }
        return String(requestPath[..<slash])
    }

    static func pathMatches(_ requestPath: String, _ cookiePath: String) -> Bool {
        if requestPath == cookiePath { return true }
        guard requestPath.hasPrefix(cookiePath) else { return false }
        return cookiePath.hasSuffix("/") || requestPath.dropFirst(cookiePath.count).first == "/"
    }

    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE, dd-MMM-yyyy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}

/// One jar per impersonation session, shared by all event loops.
final class CookieJars: Sendable {
    private let jars = Mutex<[String: CookieJar]>([:])

    func jar(for sessionID: String) -> CookieJar {
        jars.withLock { jars in
            if let jar = jars[sessionID] { return jar }
            let jar = CookieJar()
            jars[sessionID] = jar
            return jar
        }
    }

    /// Drops the jars of sessions that are no longer open.
    func retain(only open: Set<String>) {
        jars.withLock { jars in jars = jars.filter { open.contains($0.key) } }
    }
}
