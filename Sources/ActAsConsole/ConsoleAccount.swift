import ActAsAudit
import ActAsCore
import ActAsPages
import ActAsStore
import Foundation

/// "My account": who I am, my consent, and the sessions in which someone acted as me.
extension Console {
    func account(_ request: ConsoleRequest, _ principal: LiveState.Principal, notice: String? = nil, error: String? = nil, status: Int = 200) async throws -> ConsoleResponse {
        let user = principal.user
        let consent = live.read { $0.consents[user.id] }
        let activeConsent = consent.flatMap { $0.isActive(at: request.now) ? $0 : nil }
        let rules = impersonations.policy.rules
        let history = try await directory.store.impersonations(actorID: nil, targetID: user.id, limit: 50)
        // One administrator often acts as the same person more than once: keys repeat.
        let names = live.read { tables in
            Dictionary(history.map { ($0.actorID, tables.users[$0.actorID]?.displayName ?? $0.actorID) }, uniquingKeysWith: { first, _ in first })
        }
        var context: [String: Any] = [
            "user": Self.userContext(user),
            "sessionExpires": principal.session.map { Self.timestamp($0.expiresAt) } ?? "",
            "consentRequired": rules.consentRequired,
            "consentActive": activeConsent != nil,
            "consentExpires": activeConsent.map { Self.timestamp($0.expiresAt) } ?? "",
            "consentMaxHours": rules.consentMaxHours,
            "presets": [1, 24, 72].filter { $0 <= rules.consentMaxHours }.map { ["hours": $0, "label": $0 == 1 ? "1 hour" : "\($0) hours"] },
            "csrf": principal.session?.csrfToken ?? "",
            "hasSessions": !history.isEmpty,
            "sessions": history.map { session -> [String: Any] in
                [
                    "id": session.id, "actor": names[session.actorID] ?? session.actorID, "reason": session.reason,
                    "started": Self.timestamp(session.startedAt), "ended": session.endedAt.map(Self.timestamp) ?? "",
                    "open": session.isOpen, "mode": session.mode.rawValue,
                    "duration": Self.describe(interval: (session.endedAt ?? request.now).timeIntervalSince(session.startedAt)),
                    "endReason": session.endReason?.rawValue ?? "",
                ]
            },
        ]
        if let notice { context["notice"] = notice }
        context["actingAsMe"] = live.read { TargetNotice.notices(for: user.id, in: $0) }.map(\.context)  // SPEC §10.5
        if let error { context["error"] = error }
        if let open = live.read({ $0.openImpersonation(actorID: user.id, signIn: principal.session?.idHash) }) {
            context["actingAs"] = live.read { $0.users[open.targetID].map(Self.userContext) } ?? [:]
        }
        return .html(status, Templates.page(title: "My account", "account", context, signedIn: signedInContext(principal)))
    }

    /// The HTML form: `hours` to grant (presets or custom), or `action=revoke`.
    func consentForm(_ request: ConsoleRequest, _ principal: LiveState.Principal) async throws -> ConsoleResponse {
        guard let session = principal.session else { return csrfRefused(request) }
        guard csrfValid(request, session: session) else { return csrfRefused(request) }
        if request.formValue("action") == "revoke" {
            _ = try await impersonations.revokeConsent(principal.user, context: context(request), now: request.now)
            return .redirect(303, to: "/.actas/")
        }
        let preset = request.formValue("hours") ?? ""
        let text = preset.isEmpty ? (request.formValue("custom_hours") ?? "") : preset
        let hours: Int
        do {
            hours = try impersonations.policy.consentHours(parsing: text.trimmingCharacters(in: .whitespaces))
        } catch {
            return try await account(request, principal, error: error.sentence, status: 400)
        }
        switch try await impersonations.grantConsent(principal.user, hours: hours, context: context(request), now: request.now) {
        case .success: return .redirect(303, to: "/.actas/")
        case .failure(let failure): return try await account(request, principal, error: failure.sentence, status: failure.httpStatus)
        }
    }

    /// `POST {hours}` grants, `DELETE` revokes; both answer the consent as `/me` shows it.
    func consentAPI(_ request: ConsoleRequest, _ principal: LiveState.Principal, grant: Bool) async throws -> ConsoleResponse {
        if let refusal = apiCSRF(request, principal) { return refusal }
        if grant {
            // JSONDecoder is strict about types: `true`, `1.5` and `"24"` are not hours.
            struct Body: Decodable { let hours: Int }
            guard let hours = try? JSONDecoder().decode(Body.self, from: Data(request.body)).hours else {
                let invalid = InvalidInput.hours(maximum: impersonations.policy.rules.consentMaxHours)
                return .json(400, ErrorJSON(error: invalid.code, message: invalid.sentence))
            }
            switch try await impersonations.grantConsent(principal.user, hours: hours, context: context(request), now: request.now) {
            case .success(let consent):
                return .json(200, consentObject(consent, now: request.now))
            case .failure(let failure):
                return .json(failure.httpStatus, ErrorJSON(error: failure.code, message: failure.sentence))
            }
        }
        let revoked = try await impersonations.revokeConsent(principal.user, context: context(request), now: request.now)
        return .json(200, consentObject(revoked, now: request.now))
    }

    func consentObject(_ consent: Consent?, now: Date) -> ConsentJSON {
        guard let consent, consent.isActive(at: now) else { return ConsentJSON(active: false, expiresAt: nil) }
        return ConsentJSON(active: true, expiresAt: Self.timestamp(consent.expiresAt))
    }

    /// Cookie-authenticated API calls need the CSRF token and a same-origin request; tokens don't.
    func apiCSRF(_ request: ConsoleRequest, _ principal: LiveState.Principal) -> ConsoleResponse? {
        guard let session = principal.session else { return nil }
        return csrfValid(request, session: session) ? nil : csrfRefused(request)
    }

    func me(_ principal: LiveState.Principal, now: Date) -> MeJSON {
        let user = principal.user
        let consent = live.read { $0.consents[user.id] }
        let open = live.read { $0.openImpersonation(actorID: user.id, signIn: principal.session?.idHash) }
        return MeJSON(
            user: UserJSON(id: user.id, username: user.username, email: user.email, name: user.name, role: user.role,
                           groups: user.groups, orgUnit: user.orgUnit),
            impersonation: open.map(impersonationObject), consent: consentObject(consent, now: now),
            csrfToken: principal.session?.csrfToken)
    }

    /// SPEC §4: `{"id", "target": {id, username, name}, "mode", "started_at", "expires_at"}`.
    func impersonationObject(_ session: ImpersonationSession) -> ImpersonationJSON {
        let target = live.read { $0.users[session.targetID] }
        return ImpersonationJSON(
            id: session.id, target: PersonJSON(id: session.targetID, username: target?.username ?? "", name: target?.name ?? ""),
            mode: session.mode.rawValue, startedAt: Self.timestamp(session.startedAt), expiresAt: Self.timestamp(session.expiresAt))
    }

    static func describe(interval: TimeInterval) -> String {
        // Store times are floats: a non-finite or absurd difference must not trap `Int(_:)`.
        let seconds = interval.isFinite ? Int(min(max(0, interval), 1e12).rounded()) : 0
        if seconds < 60 { return "\(seconds) s" }
        if seconds < 3600 { return "\(seconds / 60) min" }
        return "\(seconds / 3600) h \(seconds % 3600 / 60) min"
    }
}
