import ActAsCore
import Foundation

/// The notice the person acted as sees (SPEC §10.5): "NAME (username) is acting as you since
/// HH:MM — reason: … — See what they do — End it now". One per open impersonation of them; the
/// console's home shows it in its own template, the proxy inserts `TargetNotice.html` into the
/// target's app pages like the banner (§7).
public struct TargetNotice: Sendable, Equatable {
    public var sessionID: String
    public var actorName: String
    public var actorUsername: String
    public var startedAt: Date
    public var reason: String
    /// The target has an active consent grant, so the notice offers to revoke it (SPEC §6:
    /// revoking ends the session with `consent_revoked`).
    public var consentRevocable: Bool

    public init(sessionID: String, actorName: String, actorUsername: String, startedAt: Date, reason: String, consentRevocable: Bool = false) {
        self.sessionID = sessionID
        self.actorName = actorName
        self.actorUsername = actorUsername
        self.startedAt = startedAt
        self.reason = reason
        self.consentRevocable = consentRevocable
    }

    /// The notice for `session`, naming its actor as the directory has them (their id when the
    /// row is gone).
    public init(session: ImpersonationSession, actor: User?, consentRevocable: Bool = false) {
        self.init(sessionID: session.id, actorName: actor?.displayName ?? session.actorID, actorUsername: actor?.username ?? session.actorID,
                  startedAt: session.startedAt, reason: session.reason, consentRevocable: consentRevocable)
    }

    /// `HH:MM` in UTC: the proxy renders it without knowing the reader's time zone; the
    /// `<time datetime>` around it carries the full instant.
    public var since: String {
        let fields = RFC3339.fields(seconds: Int64(startedAt.timeIntervalSince1970.rounded(.down)))
        return String(format: "%02d:%02d", Int(fields.hour), Int(fields.minute))
    }

    /// `POST` here ends it ("End it now"); with `consent=revoke` it revokes the target's consent,
    /// which ends it as `consent_revoked`.
    public var endAction: String { "/.actas/sessions/\(sessionID)/end" }
    public var sessionPage: String { "/.actas/sessions/\(sessionID)" }
    /// The form field that turns End it now into Revoke consent.
    public static let revokeField = (name: "consent", value: "revoke")

    // MARK: markup

    /// The notices as inserted after a page's `<body>`: pure ASCII (non-ASCII as character
    /// references) like the banner, so any page charset reads it the same; every attacker-chosen
    /// value (names, reason) escaped. `csrfToken` is the target's own; `path` is the page shown,
    /// where the forms send the browser back. No script, so a page's CSP `script-src` cannot
    /// silence it; inline styles only (a CSP that forbids them leaves it unstyled, still there).
    public static func html(_ notices: [TargetNotice], csrfToken: String, path: String) -> String {
        guard !notices.isEmpty else { return "" }
        let rd = ReturnPath.sanitise(path)
        var out = "<actas-notice role=\"alert\" aria-label=\"Someone is acting as you\" style=\"\(Style.host)\">"
        for notice in notices {
            out += "<actas-line data-session=\"\(Banner.text(notice.sessionID))\" style=\"\(Style.line)\">"
            out += "<actas-name dir=\"auto\" style=\"\(Style.strong)\">\(Banner.text(notice.actorName))</actas-name>"
            out += " (<actas-user dir=\"auto\" style=\"\(Style.plain)\">\(Banner.text(notice.actorUsername))</actas-user>)"
            out += " is acting as you since <time datetime=\"\(RFC3339.string(from: notice.startedAt))\" style=\"\(Style.plain)\">\(notice.since)</time>"
            out += " &#x2014; reason: <actas-reason dir=\"auto\" style=\"\(Style.plain)\">\(Banner.text(notice.reason))</actas-reason>"
            out += " &#x2014; <a href=\"\(Banner.text(notice.sessionPage))\" style=\"\(Style.link)\">See what they do</a>"
            out += " &#x2014; " + form(notice, csrfToken: csrfToken, rd: rd, revoke: false)
            if notice.consentRevocable {
                out += " " + form(notice, csrfToken: csrfToken, rd: rd, revoke: true)
            }
            out += "</actas-line>"
        }
        out += "</actas-notice>"
        return out
    }

    public static func markup(_ notices: [TargetNotice], csrfToken: String, path: String) -> [UInt8] {
        Array(html(notices, csrfToken: csrfToken, path: path).utf8)
    }

    private static func form(_ notice: TargetNotice, csrfToken: String, rd: String, revoke: Bool) -> String {
        var out = "<form method=\"post\" action=\"\(Banner.text(notice.endAction))\" data-actas=\"\(revoke ? "revoke-consent" : "end")\""
        out += " style=\"\(Style.form)\">"
        out += "<input type=\"hidden\" name=\"csrf_token\" value=\"\(Banner.text(csrfToken))\" />"
        out += "<input type=\"hidden\" name=\"rd\" value=\"\(Banner.text(rd))\" />"
        if revoke { out += "<input type=\"hidden\" name=\"\(revokeField.name)\" value=\"\(revokeField.value)\" />" }
        out += "<button type=\"submit\" style=\"\(Style.button)\">\(revoke ? "Revoke consent" : "End it now")</button>"
        out += "</form>"
        return out
    }

    /// Inline `!important` beats any page rule; `all: initial` / `unset` keeps the page's
    /// inherited styles out (as the banner does). Dark red on white: 8.6:1.
    enum Style {
        static let ink = "#7a0b0b"
        static let host = declarations([
            ("all", "initial"), ("display", "block"), ("position", "relative"), ("z-index", "2147483646"), ("box-sizing", "border-box"),
            ("margin", "0"), ("padding", "6px 12px"), ("background", "#fff4f4"), ("color", ink), ("border-bottom", "2px solid \(ink)"),
            ("font", "14px/22px system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif"), ("text-align", "left"),
            ("visibility", "visible"), ("opacity", "1"), ("transform", "none"), ("clip-path", "none"),
        ])
        static let line = declarations([("all", "unset"), ("display", "block"), ("overflow-wrap", "anywhere")])
        static let strong = declarations([("all", "unset"), ("font-weight", "700")])
        static let plain = declarations([("all", "unset")])
        // Links and buttons keep the browser's focus ring (no `all: unset`): keyboard users see where they are.
        static let link = declarations([("color", ink), ("text-decoration", "underline"), ("cursor", "pointer"), ("font", "inherit")])
        static let form = declarations([("all", "unset"), ("display", "inline"), ("margin", "0")])
        static let button = declarations([
            ("display", "inline-block"), ("margin", "0"), ("border", "0"), ("padding", "1px 10px"), ("border-radius", "4px"), ("background", ink),
            ("font", "inherit"), ("line-height", "20px"), ("text-transform", "none"), ("width", "auto"), ("height", "auto"),
            ("color", "#fff"), ("font-weight", "700"), ("cursor", "pointer"), ("visibility", "visible"), ("opacity", "1"),
        ])

        static func declarations(_ pairs: [(String, String)]) -> String {
            pairs.map { "\($0.0):\($0.1)!important" }.joined(separator: ";")
        }
    }
}
