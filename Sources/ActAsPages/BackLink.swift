/// Where a refusal page's "Go back" leads (SPEC §7: refusal pages shown while impersonating
/// carry a link back): the page the browser came from when the `Referer` names this very
/// origin, resolved as `ReturnPath` resolves `rd`; anything else (another site, plain http, a
/// look-alike host, no Referer) leads home, `/`.
public enum BackLink {
    public static let home = "/"

    /// `host` is the request's `Host`; `current` the refused path when going back to it would
    /// only be refused again (a GET), so a page that refers to itself leads home instead.
    public static func from(referer: String?, host: String?, current: String? = nil) -> String {
        guard let referer, let host, !host.isEmpty else { return home }
        let scheme = "https://"
        guard referer.count > scheme.count, referer.prefix(scheme.count).lowercased() == scheme else { return home }
        let rest = referer.dropFirst(scheme.count)
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        guard sameAuthority(String(rest[..<authorityEnd]), host) else { return home }
        var path = String(rest[authorityEnd...])
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        guard let resolved = ReturnPath.resolved(path) else { return home }
        if let current, resolved.prefix(while: { $0 != "?" }) == current { return home }
        return resolved
    }

    /// `host` and `host:443` are one origin over https.
    static func sameAuthority(_ authority: String, _ host: String) -> Bool {
        let a = authority.lowercased()
        let h = host.lowercased()
        return a == h || a == h + ":443" || a + ":443" == h
    }
}
