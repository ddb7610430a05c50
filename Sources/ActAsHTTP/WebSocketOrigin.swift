/// Cross-site WebSocket hijacking (SPEC §4, as for state-changing requests): browsers attach
/// cookies to a WebSocket handshake that any page opens, and the handshake is not subject to
/// CORS, so an upgrade authenticated by the session cookie is tunnelled only when it shows it
/// comes from this origin. Browsers always send `Origin` with a WebSocket handshake; a client
/// that sends neither `Origin` nor `Sec-Fetch-Site` is a program, not a page another site can
/// drive. Upgrades authenticated by an API token are not affected (no page can add the header).
public enum WebSocketOrigin {
    /// `Origin` equal to `https://host` (`:443` optional), or — when it is absent or `null` —
    /// `Sec-Fetch-Site: same-origin`; also allowed with neither header.
    public static func allowed(origin: String?, secFetchSite: String?, host: String) -> Bool {
        if let origin, origin != "null" {
            let origin = origin.lowercased()
            let host = host.lowercased()
            return origin == "https://\(host)" || origin == "https://\(host):443" || "\(origin):443" == "https://\(host)"
        }
        if let site = secFetchSite { return site.lowercased() == "same-origin" }
        return origin == nil
    }
}
