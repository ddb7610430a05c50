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
        if session.isOpen {
            if try await impersonations.endAndPersist(id, reason: .endedByTarget, context: context(request), now: request.now) {
                endedAt = request.now
                reason = .endedByTarget
            }
        }
        if request.formValue("csrf_token") != nil || request.formValue("rd") != nil {
            return .redirect(303, to: ReturnPath.sanitise(request.formValue("rd") ?? "/.actas/"))
        }
        return .json(200, ["id": session.id, "ended_at": Self.timestamp(endedAt), "end_reason": reason.rawValue])
    }
}

/// The notice the person acted as sees (SPEC §10.5): "NAME (username) is acting as you since
/// HH:MM — reason: … — See what they do — End it now".
public struct TargetNotice: Sendable, Equatable {
    public var sessionID: String
    public var actorName: String
    public var actorUsername: String
    public var startedAt: Date
    public var reason: String

    /// `HH:MM` in UTC: the proxy renders it without knowing the reader's time zone; the
    /// `<time datetime>` around it carries the full instant.
    public var since: String {
        let fields = RFC3339.fields(seconds: Int64(startedAt.timeIntervalSince1970.rounded(.down)))
        return String(format: "%02d:%02d", Int(fields.hour), Int(fields.minute))
    }

    /// The open impersonations of `userID`, oldest first.
    public static func notices(for userID: String, in tables: LiveState.Tables) -> [TargetNotice] {
        tables.impersonations.values
            .filter { $0.targetID == userID && $0.isOpen }
            .sorted { $0.startedAt < $1.startedAt }
            .map { session in
                let actor = tables.users[session.actorID]
                return TargetNotice(sessionID: session.id, actorName: actor?.displayName ?? session.actorID,
                                    actorUsername: actor?.username ?? session.actorID, startedAt: session.startedAt, reason: session.reason)
            }
    }

    var context: [String: Any] {
        ["id": sessionID, "actor": actorName, "actorUsername": actorUsername, "since": since,
         "sinceISO": RFC3339.string(from: startedAt), "reason": reason]
    }
}
