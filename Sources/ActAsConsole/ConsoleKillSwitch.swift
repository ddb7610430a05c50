import ActAsCore
// ReturnPath and the console's HTTP types are moving into ActAsPages (issue 18).
#if canImport(ActAsPages)
import ActAsPages
#endif
import ActAsSessions
import ActAsStore
import Foundation

extension Console {
    /// `POST /.actas/sessions/{id}/end` (SPEC §10.5, "End it now"): the target ends an
    /// impersonation of them. Through the same end path as every other end: the live state
    /// first (nothing more is forwarded as them), the store, and every other instance told
    /// before this answers. Anyone but the target gets `404`, as for a session they may not see.
    func endByTarget(_ request: ConsoleRequest, _ principal: LiveState.Principal, id: String) async throws -> ConsoleResponse {
        if let refusal = apiCSRF(request, principal) { return refusal }
        let open = live.read { $0.impersonations[id] }
        let session: ImpersonationSession?
        if let open { session = open } else { session = try await directory.store.impersonation(id: id) }
        guard let session, session.targetID == principal.user.id else {
            return problem(request, status: 404, code: "not_found", message: "There is no session \(id) acting as you.")
        }
        var endedAt = session.endedAt ?? request.now
        var reason = session.endReason ?? .endedByTarget
        var revoked = false
        if session.isOpen, request.formValue(TargetNotice.revokeField.name) == TargetNotice.revokeField.value {
            // The notice's Revoke consent (SPEC §6, §7): the consent goes, and with it every
            // session acting as them, as `consent_revoked`, before this answers.
            if try await impersonations.revokeConsent(principal.user, context: context(request), now: request.now) != nil,
               live.read({ $0.impersonations[id] == nil }) {
                endedAt = request.now
                reason = .consentRevoked
                revoked = true
            }
        }
        if session.isOpen, !revoked {
            if try await impersonations.endAndPersist(id, reason: .endedByTarget, context: context(request), now: request.now) {
                endedAt = request.now
                reason = .endedByTarget
            }
        }
        if request.formValue("csrf_token") != nil || request.formValue("rd") != nil {
            return .redirect(303, to: ReturnPath.sanitise(request.formValue("rd") ?? "/.actas/"))
        }
        return .json(200, SessionEndJSON(id: session.id, endedAt: Self.timestamp(endedAt), endReason: reason.rawValue))
    }
}

/// The console home's notice (Templates' `actingAsMe`); the type and the markup the proxy
/// inserts into app pages live in ActAsPages.
extension TargetNotice {
    /// The open impersonations of `userID`, oldest first.
    public static func notices(for userID: String, in tables: LiveState.Tables) -> [TargetNotice] {
        tables.openImpersonations(targetID: userID).map { TargetNotice(session: $0, actor: tables.users[$0.actorID]) }
    }

    var context: [String: Any] {
        ["id": sessionID, "actor": actorName, "actorUsername": actorUsername, "since": since,
         "sinceISO": RFC3339.string(from: startedAt), "reason": reason]
    }
}

/// `{"id", "ended_at", "end_reason"}`: the answer to `POST /.actas/sessions/{id}/end`.
struct SessionEndJSON: Encodable, Equatable {
    var id: String
    var endedAt: String
    var endReason: String

    enum CodingKeys: String, CodingKey {
        case id, endedAt = "ended_at", endReason = "end_reason"
    }
}
