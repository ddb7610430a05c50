import ActAsCore
import ActAsHTTP
import ActAsStore
import Foundation
import Synchronization

/// Cookies the application sets during an impersonation session, kept on the proxy (SPEC §7):
/// the application is sent these and only these within that session, and they vanish with it.
/// Those set without `HttpOnly` also reach the browser, so the app's scripts can read them;
/// the jar remembers the administrator's own values of those names to put them back at the
/// end (see CookiePassThrough).
final class CookieJar: Sendable {
    struct Cookie: Sendable {
        var name: String
        var value: String
        var path: String
        var expires: Date?
    }

    /// What the browser holds because of this session, and what it held before.
    struct BrowserSide: Sendable {
        /// Cookies let through to the browser: the last `Set-Cookie` of each.
        var passed: [CookiePassThrough.Key: SetCookieLine] = [:]
        /// The administrator's own values, as their browser sent them before the app's value of
        /// that name was let through (the first seen wins).
        var own: [String: String] = [:]

        var passedNames: Set<String> { Set(passed.keys.map(\.name)) }
    }

    private let cookies = Mutex<[Cookie]>([])
    private let browser = Mutex(BrowserSide())
    /// An application setting more than this many cookies in one session loses the oldest.
    static let maxCookies = 200

    /// What became of a `Set-Cookie`.
    enum Outcome: Equatable {
        /// Kept in the jar; `passToBrowser`: the browser gets the line too, as the app wrote it.
        case stored(passToBrowser: Bool)
        /// The name is one the proxy owns (SPEC §7: never accepted from the upstream).
        case refusedProxyOwned
        /// Nameless, or a name that is not an RFC 6265 token: a browser would keep it under
        /// a name other than the one the app meant, and it could not be sent back unambiguously.
        case refusedInvalidName
    }

    /// Applies one `Set-Cookie` value (RFC 6265 §5.2, the parts a single-host jar needs).
    @discardableResult
    func store(_ setCookie: String, requestPath: String, now: Date) -> Outcome {
        let line: SetCookieLine
        switch SetCookieLine.parse(setCookie, requestPath: requestPath, now: now) {
        case .success(let parsed): line = parsed
        case .failure(.proxyOwned): return .refusedProxyOwned
        case .failure(.invalid): return .refusedInvalidName
        }
        let cookie = Cookie(name: line.name, value: line.value, path: line.path, expires: line.expires)
        cookies.withLock { cookies in
            cookies.removeAll { $0.name == cookie.name && $0.path == cookie.path }
            if line.isDeletion(now: now) { return }
            cookies.append(cookie)
            if cookies.count > Self.maxCookies { cookies.removeFirst(cookies.count - Self.maxCookies) }
        }
        let key = CookiePassThrough.Key(name: line.name, path: line.path, domain: line.domain)
        let passes = browser.withLock { side in
            guard CookiePassThrough.passes(line, browserHoldsAppValue: side.passed[key] != nil, now: now) else { return false }
            if side.passed[key] != nil || side.passed.count < Self.maxCookies { side.passed[key] = line }
            return side.passed[key] != nil
        }
        return .stored(passToBrowser: passes)
    }

    /// Notes the administrator's own values from the Cookie fields of a request made while
    /// impersonating: a name the app has not yet put into the browser is still theirs.
    func noteBrowserCookies(_ pairs: [(name: String, value: String)]) {
        guard !pairs.isEmpty else { return }
        browser.withLock { side in
            let passed = side.passedNames
            for (name, value) in pairs where !name.isEmpty && side.own[name] == nil && !passed.contains(name) {
                guard side.own.count < Self.maxCookies, !SetCookieName.isProxyOwnedName(Array(name.utf8)) else { continue }
                side.own[name] = value
            }
        }
    }

    var browserSide: BrowserSide { browser.withLock { $0 } }

    /// The `Set-Cookie` values that undo what this session put into the browser.
    func restoration(now: Date) -> [String] {
        let side = browserSide
        return side.passed.sorted { ($0.key.name, $0.key.path) < ($1.key.name, $1.key.path) }.map { key, last in
            let own = side.own[key.name].flatMap { CookiePassThrough.isRestorable($0) ? $0 : nil }
            return CookiePassThrough.restoration(of: key, last: last, own: own, now: now)
        }
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

/// One jar per impersonation session, shared by all event loops, each filed under the
/// sign-in session that acts through it: after the session ends, that browser's next
/// response carries the restoration (see `takeRestoration`), then the jar is gone. When that
/// sign-in ended too (it expired, the browser was closed and signed in anew), the next sign-in
/// of the same administrator gets it instead: the browser most likely still holds the app's
/// values, and they must not reach the app as the administrator.
final class CookieJars: Sendable {
    struct Entry: Sendable {
        var jar: CookieJar
        /// The sign-in session's id hash (nil: a session from before schema version 5).
        var signIn: String?
        var actorID: String
        var createdAt: Date
    }

    /// Undelivered restorations are kept this long at most.
    static let keepUndelivered: TimeInterval = 30 * 24 * 3600

    private let jars = Mutex<[String: Entry]>([:])
    /// How many jars exist: the request path skips the lock while there are none.
    private let count = Atomic<Int>(0)

    func jar(for session: ImpersonationSession, live: LiveState) -> CookieJar {
        jars.withLock { jars in
            if let entry = jars[session.id] { return entry.jar }
            Self.dropUndeliverable(&jars, live: live, now: Date())
            let jar = CookieJar()
            jars[session.id] = Entry(jar: jar, signIn: session.signInSession, actorID: session.actorID, createdAt: Date())
            count.store(jars.count, ordering: .releasing)
            return jar
        }
    }

    /// Ended sessions whose cookies are still in the browser of the sign-in `signIn`: its own,
    /// and those of the same administrator's sign-ins that are gone.
    private func ended(signIn: String, live: LiveState) -> [(id: String, jar: CookieJar)] {
        guard count.load(ordering: .acquiring) > 0 else { return [] }
        let actor = live.read { $0.sessions[signIn]?.userID }
        let candidates = jars.withLock { jars in jars.filter { $0.value.signIn == signIn || ($0.value.actorID == actor && actor != nil) } }
        guard !candidates.isEmpty else { return [] }
        let now = Date()
        return live.read { tables in
            candidates.compactMap { id, entry in
                guard tables.impersonations[id] == nil else { return nil }
                if entry.signIn == signIn { return (id, entry.jar) }
                guard let actor, entry.actorID == actor,
                      entry.signIn.flatMap({ tables.sessions[$0] }).map({ $0.expiresAt > now }) != true else { return nil }
                return (id, entry.jar)
            }
        }
    }

    /// For a request of the sign-in `signIn` that is not impersonating: the Cookie header to
    /// forward instead of the browser's while it may still hold the app's values from an
    /// ended session (`.some(nil)`: none at all); nil when nothing needs replacing.
    func administratorCookies(signIn: String, fields: @autoclosure () -> [(String, String)], live: LiveState) -> String?? {
        let ended = ended(signIn: signIn, live: live)
        guard !ended.isEmpty else { return nil }
        var passed: Set<String> = []
        var own: [String: String] = [:]
        for (_, jar) in ended {
            let side = jar.browserSide
            passed.formUnion(side.passedNames)
            own.merge(side.own) { first, _ in first }
        }
        guard !passed.isEmpty else { return nil }
        return .some(CookiePassThrough.administratorCookies(CookiePassThrough.browserCookies(fields()), passedNames: passed, own: own))
    }

    /// `Set-Cookie: …` lines that put back the administrator's own cookies after the sign-in's
    /// impersonation ended (nil when there is nothing to undo). Taken once: the jar is dropped.
    func takeRestoration(signIn: String?, live: LiveState, now: Date = Date()) -> String? {
        guard let signIn else { return nil }
        let ended = ended(signIn: signIn, live: live)
        guard !ended.isEmpty else { return nil }
        let taken = jars.withLock { jars in
            let taken = ended.filter { jars.removeValue(forKey: $0.id) != nil }
            count.store(jars.count, ordering: .releasing)
            return taken
        }
        let lines = taken.flatMap { $0.jar.restoration(now: now) }
        return lines.isEmpty ? nil : lines.map { "Set-Cookie: \($0)\r\n" }.joined()
    }

    /// Jars with nothing to give back: the session ended and nothing went to the browser, or
    /// it ended long ago (`keepUndelivered`).
    private static func dropUndeliverable(_ jars: inout [String: Entry], live: LiveState, now: Date) {
        guard !jars.isEmpty else { return }
        let gone: [String] = live.read { tables in
            jars.compactMap { id, entry in
                guard tables.impersonations[id] == nil else { return nil }
                let stale = now.timeIntervalSince(entry.createdAt) > Self.keepUndelivered
                return stale || entry.jar.browserSide.passed.isEmpty ? id : nil
            }
        }
        for id in gone { jars[id] = nil }
    }
}
