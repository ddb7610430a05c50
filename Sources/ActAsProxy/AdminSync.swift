import ActAsHTTP
import ActAsStore
import NIOCore

/// The change feed an instance's admin listener catches up on request.
struct ChangeFeedTarget: Sendable {
    let sync: StateSync
    let instanceID: String
}

/// `POST /sync?change=N` on the admin listener (SPEC §10.1): read the store's change feed now,
/// apply it (ending impersonations that must end, as the timer's poll does) and answer `200`
/// with the position reached once it is at least N. `actas` commands that change who may do
/// what call this on every instance and return only after each confirmed.
enum AdminSync {
    static func reply(_ head: RequestHead, target: ChangeFeedTarget?, on loop: any EventLoop) -> SmallHTTPHandler.Reply {
        guard head.method == .post else {
            return .now(.init(status: 405, reason: "Method Not Allowed", contentType: "text/plain", body: "POST only\n", headers: "Allow: POST\r\n"))
        }
        guard let target else {
            return .now(.init(status: 503, reason: "Service Unavailable", contentType: "text/plain", body: "the change feed is not running yet\n"))
        }
        let query = head.target.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        guard let change = syncTargetChange(query: query) else {
            return .now(.init(status: 400, reason: "Bad Request", contentType: "text/plain", body: "expected /sync?change=N (a change feed position)\n"))
        }
        let promise = loop.makePromise(of: SmallHTTPHandler.Response.self)
        promise.completeWithTask {
            await answer(target: target, change: change)
        }
        return .later(promise.futureResult)
    }

    static func answer(target: ChangeFeedTarget, change: Int64) async -> SmallHTTPHandler.Response {
        do {
            let reached = try await target.sync.catchUp(to: change)
            let body = SyncAcknowledgement(instanceID: target.instanceID, change: reached).body
            // 409: the store has no such change (yet); the caller's number is not ours to wait for.
            return reached >= change
                ? .init(status: 200, reason: "OK", contentType: "application/json", body: body)
                : .init(status: 409, reason: "Conflict", contentType: "application/json", body: body)
        } catch {
            return .init(status: 503, reason: "Service Unavailable", contentType: "text/plain", body: "store unavailable\n")
        }
    }
}
