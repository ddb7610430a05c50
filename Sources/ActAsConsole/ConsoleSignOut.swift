import ActAsPages
import ActAsStore
import Foundation

/// `GET /.actas/logout` (SPEC §4): a page with one "Sign out" button, so an application's own
/// "log out" link or redirect can point here. GET never changes state; the button POSTs with
/// the CSRF token, and `rd` is carried through and honoured after sign-out as for sign-in.
extension Console {
    func logoutPage(_ request: ConsoleRequest) -> ConsoleResponse {
        // SPEC §4: the page is for signed-in people; anyone else meets the rule of every
        // protected path (browsers 302 to the sign-in page with `rd`, others 401 JSON).
        guard let principal = request.principal else { return signInRequired(request) }
        guard let session = principal.session else {
            return problem(request, status: 400, code: "not_a_session", message: "API tokens do not sign in, so they cannot sign out.")
        }
        let rd = (request.queryValue("rd")).map { $0.isEmpty ? "" : ReturnPath.sanitise($0) } ?? ""
        var context: [String: Any] = [
            "user": Self.userContext(principal.user), "csrf": session.csrfToken, "rd": rd,
        ]
        // The impersonation this sign-in holds: signing out ends it (SPEC §7).
        if principal.impersonation != nil, let target = principal.target {
            context["actingAs"] = Self.userContext(target)
        }
        // Without the layout's own sign-out form: one button on the page.
        return .html(200, Templates.page(title: "Sign out", "signout", context))
    }

    /// Where a sign-out leads: `rd` (same-origin paths only, else `/`), or the sign-in page.
    static func afterSignOut(_ request: ConsoleRequest) -> String {
        guard let rd = request.formValue("rd") ?? request.queryValue("rd"), !rd.isEmpty else { return "/.actas/login" }
        return ReturnPath.sanitise(rd)
    }
}
