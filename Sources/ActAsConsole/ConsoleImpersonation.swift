import ActAsAudit
import ActAsCore
import ActAsPages
import ActAsSessions
import ActAsStore
import Foundation

/// Finding a user, confirming, starting, extending and ending impersonation; the page that
/// says why a session ended.
extension Console {
    var mayImpersonate: (User) -> Bool { { [policy = impersonations.policy] in policy.roles.mayImpersonate($0.role) } }

    func notPermitted(_ request: ConsoleRequest) -> ConsoleResponse {
        problem(request, status: 403, code: Refusal.notPermitted.code, message: Refusal.notPermitted.sentence)
    }

    // MARK: the user list

    func usersPage(_ request: ConsoleRequest, _ principal: LiveState.Principal) -> ConsoleResponse {
        guard mayImpersonate(principal.user) else { return notPermitted(request) }
        let query = request.queryValue("q") ?? ""
        let rows = impersonations.rows(for: principal.user, query: query, now: request.now)
        let context: [String: Any] = [
            "q": query,
            "count": rows.count,
            "rows": rows.map { row -> [String: Any] in
                var item = Self.userContext(row.user)
                item["path"] = "/.actas/users/" + FormCoding.encode(row.user.username)
                if let refusal = row.refusal {
                    item["why"] = refusal.sentence
                    item["code"] = refusal.code
                } else {
                    item["may"] = true
                }
                return item
            },
        ]
        return .html(200, Templates.page(title: "Act as a user", "users", context, signedIn: signedInContext(principal)))
    }

    func usersAPI(_ request: ConsoleRequest, _ principal: LiveState.Principal) -> ConsoleResponse {
        guard mayImpersonate(principal.user) else { return notPermitted(request) }
        let rows = impersonations.rows(for: principal.user, query: request.queryValue("q") ?? "", now: request.now)
        return .json(200, UsersJSON(users: rows.map { row in
            UserRowJSON(
                id: row.user.id, username: row.user.username, name: row.user.name, email: row.user.email,
                role: row.user.role, groups: row.user.groups, orgUnit: row.user.orgUnit, status: row.user.status.rawValue,
                impersonable: row.refusal == nil, reason: row.refusal?.code)
        }))
    }

    // MARK: confirm and start

    /// Who, for how long, in which mode, and why — before anything starts.
    func confirmPage(_ request: ConsoleRequest, _ principal: LiveState.Principal, username: String, error: String? = nil, status: Int = 200, reason: String = "") -> ConsoleResponse {
        guard mayImpersonate(principal.user) else { return notPermitted(request) }
        guard let row = impersonations.rows(for: principal.user, query: "", now: request.now).first(where: { $0.user.username == username }) else {
            return problem(request, status: 404, code: Refusal.targetNotFound.code, message: Refusal.targetNotFound.sentence)
        }
        let rules = impersonations.policy.rules
        let consent = live.read { $0.consents[row.user.id] }
        let preview = impersonations.policy.expiry(startingAt: request.now, requested: nil, targetConsent: consent)
        var durations: [[String: Any]] = []
        for (label, seconds) in [("15 minutes", 900.0), ("30 minutes", 1800), ("1 hour", 3600), ("2 hours", 7200), ("4 hours", 14400), ("8 hours", 28800), ("24 hours", 86400)]
        where seconds <= rules.maxDuration {
            durations.append(["value": Self.durationText(seconds), "label": label, "selected": seconds == rules.defaultDuration])
        }
        if !durations.contains(where: { ($0["selected"] as? Bool) == true }) {
            durations.insert(["value": Self.durationText(rules.defaultDuration), "label": Self.describe(interval: rules.defaultDuration), "selected": true], at: 0)
        }
        var context: [String: Any] = [
            "target": Self.userContext(row.user),
            "csrf": principal.session?.csrfToken ?? "",
            "durations": durations,
            "defaultEnds": Self.timestamp(preview),
            "consentCaps": rules.consentRequired && consent.map { $0.expiresAt < request.now.addingTimeInterval(rules.maxDuration) } == true,
            "consentExpires": consent.map { Self.timestamp($0.expiresAt) } ?? "",
            "reasonMin": rules.reasonMinLength,
            "reason": reason,
        ]
        switch rules.mode {
        case .choose: context["chooseMode"] = true
        case .readOnly: context["fixedMode"] = "read-only"
        case .readWrite: context["fixedMode"] = "read-write"
        }
        if let refusal = row.refusal { context["refusal"] = refusal.sentence }
        if let error { context["error"] = error }
        return .html(status, Templates.page(title: "Act as \(row.user.displayName)", "confirm", context, signedIn: signedInContext(principal)))
    }

    func startForm(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        let csrfOK = principal.session.map { csrfValid(request, session: $0) } ?? false
        let target = request.formValue("target") ?? ""
        let start = Impersonations.StartRequest(
            target: target, reason: request.formValue("reason") ?? "", mode: request.formValue("mode"),
            duration: request.formValue("duration"), csrfValid: csrfOK)
        switch try await impersonations.start(start, by: principal, context: context(request), now: request.now) {
        case .success:
            return .redirect(303, to: "/")
        case .failure(let failure):
            switch failure {
            case .refused(.reasonRequired), .invalid:
                // Something the administrator can fix on the same form.
                return confirmPage(request, principal, username: target, error: failure.sentence, status: failure.httpStatus, reason: start.reason)
            default:
                return problem(request, status: failure.httpStatus, code: failure.code, message: failure.sentence)
            }
        }
    }

    func startAPI(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        let body = request.jsonBody ?? [:]
        // A duration or mode of the wrong JSON type is invalid, not "not given".
        if let duration = body["duration"], !(duration is String) {
            return .json(400, ErrorJSON(error: InvalidInput.duration.code, message: InvalidInput.duration.sentence))
        }
        if let mode = body["mode"], !(mode is String), !(mode is NSNull) {
            return .json(400, ErrorJSON(error: InvalidInput.mode.code, message: InvalidInput.mode.sentence))
        }
        let csrfOK = principal.session.map { csrfValid(request, session: $0) } ?? true
        let start = Impersonations.StartRequest(
            target: body["target"] as? String ?? "", reason: body["reason"] as? String ?? "", mode: body["mode"] as? String,
            duration: body["duration"] as? String, csrfValid: csrfOK)
        switch try await impersonations.start(start, by: principal, context: context(request), now: request.now) {
        case .success(let session):
            return .json(201, impersonationObject(session))
        case .failure(let failure):
            return .json(failure.httpStatus, ErrorJSON(error: failure.code, message: failure.sentence))
        }
    }

    // MARK: extend and exit

    func extendForm(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        guard let session = principal.session, csrfValid(request, session: session) else { return csrfRefused(request) }
        switch try await impersonations.extend(by: principal, duration: request.formValue("duration"), context: context(request), now: request.now) {
        case .success:
            return .redirect(303, to: ReturnPath.sanitise(request.formValue("rd")))
        case .failure(let failure):
            return problem(request, status: failure.httpStatus, code: failure.code, message: failure.sentence)
        }
    }

    func extendAPI(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        if let refusal = apiCSRF(request, principal) { return refusal }
        let duration = request.jsonBody?["duration"]
        if duration != nil, !(duration is String) {
            return .json(400, ErrorJSON(error: InvalidInput.duration.code, message: InvalidInput.duration.sentence))
        }
        switch try await impersonations.extend(by: principal, duration: duration as? String, context: context(request), now: request.now) {
        case .success(let session):
            return .json(200, impersonationObject(session))
        case .failure(let failure):
            return .json(failure.httpStatus, ErrorJSON(error: failure.code, message: failure.sentence))
        }
    }

    /// Exit takes the administrator straight back (SPEC §7: no notice).
    func exitForm(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        guard let session = principal.session, csrfValid(request, session: session) else { return csrfRefused(request) }
        if let open = live.read({ $0.openImpersonation(actorID: principal.user.id, signIn: session.idHash) }) {
            _ = try await impersonations.endAndPersist(open.id, reason: .exit, context: context(request), now: request.now)
        } else {
            await impersonations.dropNotice(of: principal.user, signIn: session.idHash, now: request.now)
        }
        return .redirect(303, to: ReturnPath.sanitise(request.formValue("rd") ?? "/.actas/users"))
    }

    func exitAPI(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        if let refusal = apiCSRF(request, principal) { return refusal }
        let signIn = principal.session?.idHash
        guard principal.token == nil, let open = live.read({ $0.openImpersonation(actorID: principal.user.id, signIn: signIn) }) else {
            if principal.token == nil { await impersonations.dropNotice(of: principal.user, signIn: signIn, now: request.now) }
            let failure = principal.token == nil ? Impersonations.Failure.notImpersonating : .interactiveOnly
            return .json(failure.httpStatus, ErrorJSON(error: failure.code, message: failure.sentence))
        }
        _ = try await impersonations.endAndPersist(open.id, reason: .exit, context: context(request), now: request.now)
        var object = impersonationObject(open)
        object.endedAt = Self.timestamp(request.now)
        object.endReason = EndReason.exit.rawValue
        return .json(200, object)
    }

    // MARK: ended

    func endedPage(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        guard let id = request.queryValue("id"), let session = try await directory.store.impersonation(id: id),
              session.actorID == principal.user.id, !session.isOpen
        else {
            return problem(request, status: 404, code: "not_found", message: "There is no ended session of yours with that id.")
        }
        let target = live.read { $0.users[session.targetID] }
        let context: [String: Any] = [
            "target": target.map(Self.userContext) ?? ["displayName": session.targetID, "username": session.targetID],
            "why": session.endReason?.sentence ?? "The session ended.",
            "endReason": session.endReason?.rawValue ?? "",
            "ended": session.endedAt.map(Self.timestamp) ?? "",
            "id": session.id,
        ]
        return .html(200, Templates.page(title: "Session ended", "ended", context, signedIn: signedInContext(principal)))
    }

    /// `90m` style text for a form value.
    static func durationText(_ seconds: TimeInterval) -> String {
        let total = Int(seconds)
        if total % 3600 == 0 { return "\(total / 3600)h" }
        if total % 60 == 0 { return "\(total / 60)m" }
        return "\(total)s"
    }
}
