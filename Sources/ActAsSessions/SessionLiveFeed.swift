import ActAsAudit
import ActAsCore
import ActAsStore
import DequeModule
import Foundation
import Synchronization

/// A record's identity within a session: each instance numbers its own log (SPEC §10.2), so
/// a seq alone is ambiguous when two instances serve one session.
public struct LiveRecordKey: Sendable, Hashable, Comparable {
    public var instance: String
    public var seq: Int64

    public init(instance: String, seq: Int64) {
        self.instance = instance
        self.seq = seq
    }

    public static func < (a: LiveRecordKey, b: LiveRecordKey) -> Bool {
        (a.instance, a.seq) < (b.instance, b.seq)
    }
}

/// One request record of a session, exactly the line the log wrote (redacted, hash included).
public struct LiveRecord: Sendable, Equatable {
    public var key: LiveRecordKey
    public var line: String

    public init(key: LiveRecordKey, line: String) {
        self.key = key
        self.line = line
    }
}

public enum SessionLiveItem: Sendable, Equatable {
    case record(LiveRecord)
    /// Time for a keep-alive comment.
    case heartbeat
    case ended(EndReason?)
}

/// The live watch of impersonation sessions (SPEC §10.5, `GET /.actas/sessions/{id}/live`).
///
/// Records reach a watched session's viewers two ways, and every viewer of a session shares
/// both: this instance's own records the moment the log has them on disk (`publish`, called
/// by the log's sync thread), and, once per `pollEvery` while anyone watches, one read of the
/// store's session copy (AuditSessionLineBatches → `session_audit`), which is where another
/// instance's records arrive (PostgreSQL) and which closes any gap between a viewer's first
/// read and its subscription. So the store sees one query per watched session per tick, never
/// one per record or per viewer. The end of a session comes from the live state (fed by the
/// change feed on every instance) and is confirmed in the store before the `ended` item.
public final class SessionLiveFeed: Sendable {
    public let pollEvery: Duration
    public let heartbeatEvery: Duration
    /// This instance's `listen.instance_id`: `publish` gets its own log's lines.
    public let instance: String
    private let store: any Store
    private let live: LiveState

    private struct Watch {
        var subscribers: [UInt64: AsyncStream<SessionLiveItem>.Continuation] = [:]
        /// Every record seen while watched, by instance and seq; nil for a session line that is
        /// not a request record (so it is parsed once).
        var seen: [LiveRecordKey: String?] = [:]
        var poller: Task<Void, Never>?
    }

    private struct State {
        var watches: [String: Watch] = [:]
        var nextID: UInt64 = 0
        var closed = false
        /// This instance's latest session lines, watched or not: the store's copy lags the log
        /// by its gathering time, and a viewer subscribing in between must still get them
        /// (before newer ones, so `Last-Event-ID` never skips one).
        /// A deque: dropping the oldest line on every publish must not move the other 8,191.
        var recent: Deque<AuditSessionLine> = []
    }

    /// Far more than the copy's gathering time holds at any request rate measured here.
    static let recentCapacity = 8192

    private let state = Mutex(State())

    public init(store: any Store, live: LiveState, instance: String, pollEvery: Duration = .seconds(1), heartbeatEvery: Duration = .seconds(15)) {
        self.store = store
        self.instance = instance
        self.live = live
        self.pollEvery = pollEvery
        self.heartbeatEvery = heartbeatEvery
    }

    public struct Subscription: Sendable {
        public let items: AsyncStream<SessionLiveItem>
        /// Records this instance already saw for the session (possibly not in the store yet).
        public let known: [LiveRecord]
    }

    /// Starts watching (the first viewer starts the session's poller); the subscription ends
    /// when the iteration is cancelled, the session ends, or `close()`.
    public func watch(sessionID: String) -> Subscription {
        let (items, continuation) = AsyncStream.makeStream(of: SessionLiveItem.self)
        let outcome = state.withLock { state -> (UInt64, [LiveRecord])? in
            guard !state.closed else { return nil }
            let id = state.nextID
            state.nextID += 1
            var watch = state.watches[sessionID] ?? Watch()
            watch.subscribers[id] = continuation
            if watch.poller == nil {
                watch.poller = Task { [weak self] in await self?.poll(sessionID: sessionID) }
            }
            state.watches[sessionID] = watch
            var known = watch.seen.compactMap { key, line in line.map { LiveRecord(key: key, line: $0) } }
            known += state.recent.filter { $0.sessionID == sessionID }
                .map { LiveRecord(key: key(of: $0), line: $0.line) }
                .filter { watch.seen[$0.key] == nil }
            return (id, known)
        }
        guard let (id, known) = outcome else {
            continuation.finish()
            return Subscription(items: items, known: [])
        }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(sessionID: sessionID, id: id) }
        return Subscription(items: items, known: known)
    }

    /// This instance's durable session lines (the log's sync thread; must not block).
    /// Kept as recent lines and handed to the session's viewers under one lock, so a viewer
    /// subscribing meanwhile gets each line exactly one of the two ways.
    public func publish(_ lines: [AuditSessionLine]) {
        state.withLock { state in
            state.recent.append(contentsOf: lines)
            if state.recent.count > Self.recentCapacity { state.recent.removeFirst(state.recent.count - Self.recentCapacity) }
            guard !state.watches.isEmpty else { return }
            for line in lines where state.watches[line.sessionID] != nil {
                Self.deliver(&state, sessionID: line.sessionID, key: key(of: line), line: line.line)
            }
        }
    }

    /// SIGTERM: every stream finishes now (viewers reconnect elsewhere with `Last-Event-ID`).
    public func close() {
        let watches = state.withLock { state -> [Watch] in
            state.closed = true
            defer { state.watches = [:] }
            return Array(state.watches.values)
        }
        for watch in watches {
            watch.poller?.cancel()
            for continuation in watch.subscribers.values { continuation.finish() }
        }
    }

    /// The request records among a session's lines (`request` and `request_denied`).
    public static func isRequestRecord(_ line: String) -> Bool {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return false }
        let type = object["type"] as? String
        return type == "request" || type == "request_denied"
    }

    /// This instance's own log's lines.
    private func key(of line: AuditSessionLine) -> LiveRecordKey {
        LiveRecordKey(instance: instance, seq: Int64(line.seq))
    }

    // MARK: inside

    private func unsubscribe(sessionID: String, id: UInt64) {
        let poller = state.withLock { state -> Task<Void, Never>? in
            guard var watch = state.watches[sessionID] else { return nil }
            watch.subscribers[id] = nil
            if watch.subscribers.isEmpty {
                state.watches[sessionID] = nil
                return watch.poller
            }
            state.watches[sessionID] = watch
            return nil
        }
        poller?.cancel()
    }

    private func deliver(sessionID: String, key: LiveRecordKey, line: String) {
        state.withLock { state in Self.deliver(&state, sessionID: sessionID, key: key, line: line) }
    }

    private static func deliver(_ state: inout State, sessionID: String, key: LiveRecordKey, line: String) {
        guard var watch = state.watches[sessionID], watch.seen[key] == nil else { return }
        let record = isRequestRecord(line) ? line : nil
        watch.seen[key] = .some(record)
        state.watches[sessionID] = watch
        // Yielding never blocks and never runs a termination handler: safe under the lock.
        if let record {
            for continuation in watch.subscribers.values { continuation.yield(.record(LiveRecord(key: key, line: record))) }
        }
    }

    private func broadcast(sessionID: String, _ item: SessionLiveItem) {
        state.withLock { state in
            for continuation in state.watches[sessionID]?.subscribers.values ?? [:].values { continuation.yield(item) }
        }
    }

    private func endWatch(sessionID: String, reason: EndReason?) {
        let subscribers = state.withLock { state in state.watches.removeValue(forKey: sessionID)?.subscribers.values.map { $0 } ?? [] }
        for continuation in subscribers {
            continuation.yield(.ended(reason))
            continuation.finish()
        }
    }

    private func poll(sessionID: String) async {
        let clock = ContinuousClock()
        var lastHeartbeat = clock.now
        var endSeen = false
        while !Task.isCancelled {
            try? await Task.sleep(for: pollEvery)
            if Task.isCancelled { return }
            if let lines = try? await store.sessionAudit(sessionID: sessionID) {
                for line in lines { deliver(sessionID: sessionID, key: LiveRecordKey(instance: line.instance, seq: line.seq), line: line.line) }
            }
            if clock.now - lastHeartbeat >= heartbeatEvery {
                lastHeartbeat = clock.now
                broadcast(sessionID: sessionID, .heartbeat)
            }
            // The live state drops a session when it ends, on every instance; the store says
            // why (and guards against a session this instance has not applied yet).
            guard live.read({ $0.impersonations[sessionID] == nil }),
                  let session = try? await store.impersonation(id: sessionID), !session.isOpen
            else { continue }
            // One more round first: records logged just before the end reach the copy within
            // its gathering time, well inside one poll.
            if endSeen {
                endWatch(sessionID: sessionID, reason: session.endReason)
                return
            }
            endSeen = true
        }
    }
}
