import ActAsSessions
import ActAsStore
import Foundation

/// Where a (re)connecting viewer of `GET /.actas/sessions/{id}/live` starts.
///
/// Each instance numbers its own log (SPEC §10.2), so one seq cannot say where a stream of a
/// session served by two instances got to. An event's `id:` (and the session page's `?after=`)
/// is therefore a mark: for every instance whose records the viewer has, the highest seq it
/// has, as `INSTANCE:SEQ` pairs joined by `,` (instance percent-encoded, sorted), e.g.
/// `node-a:12,node-b:7`. Every instance's records reach the store copy in its log's order, so
/// resuming after a mark replays exactly the records the viewer lacks, whichever instance it
/// reconnects to: no gap, no duplicate. An instance the mark does not name has all its records
/// replayed; an id that is not a mark (an older seq-only id) replays the whole session — a
/// viewer may see records twice, never miss one. Without either, the stream starts from now.
struct LiveResume: Equatable {
    /// Highest seq the viewer has, per instance; nil: from now on.
    var marks: [String: Int64]?

    /// `?after=` is there even when empty (a page with no records yet): everything is replayed.
    init(lastEventID: String?, after: String?) {
        if let id = lastEventID?.trimmingCharacters(in: .whitespaces), !id.isEmpty {
            marks = Self.parse(id) ?? [:]
        } else if let after {
            marks = Self.parse(after.trimmingCharacters(in: .whitespaces)) ?? [:]
        } else {
            marks = nil
        }
    }

    struct Plan: Equatable {
        /// Records the viewer lacks, each instance's in its log's order.
        var replay: [LiveRecord]
        /// Records not to send again when the feed brings them.
        var skip: Set<LiveRecordKey>
        /// The mark the stream starts from (what the viewer has, replay not counted).
        var marks: [String: Int64]
    }

    func plan(existing: [LiveRecordKey: String]) -> Plan {
        guard let marks else {
            // From now on: what exists counts as had, so the first id names it too.
            var had: [String: Int64] = [:]
            for key in existing.keys { had[key.instance] = max(had[key.instance] ?? -1, key.seq) }
            return Plan(replay: [], skip: Set(existing.keys), marks: had)
        }
        let lacking = { (key: LiveRecordKey) in key.seq > marks[key.instance] ?? -1 }
        let replay = existing.filter { lacking($0.key) }.sorted { $0.key < $1.key }.map { LiveRecord(key: $0.key, line: $0.value) }
        return Plan(replay: replay, skip: Set(existing.keys.filter { !lacking($0) }), marks: marks)
    }

    /// The mark of a set of records (the session page's `?after=`: everything it rendered).
    static func mark(of lines: [SessionAuditLine]) -> String {
        var marks: [String: Int64] = [:]
        for line in lines { marks[line.instance] = max(marks[line.instance] ?? -1, line.seq) }
        return mark(marks)
    }

    static func mark(_ marks: [String: Int64]) -> String {
        marks.sorted { $0.key < $1.key }.map { "\(escape($0.key)):\($0.value)" }.joined(separator: ",")
    }

    /// nil unless every pair is `INSTANCE:SEQ` with a seq ≥ 0.
    static func parse(_ text: String) -> [String: Int64]? {
        var marks: [String: Int64] = [:]
        for pair in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let colon = pair.lastIndex(of: ":"),
                  let instance = String(pair[..<colon]).removingPercentEncoding,
                  let seq = Int64(pair[pair.index(after: colon)...]), seq >= 0
            else { return nil }
            marks[instance] = max(marks[instance] ?? -1, seq)
        }
        return marks
    }

    private static let plain = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    private static func escape(_ instance: String) -> String {
        instance.addingPercentEncoding(withAllowedCharacters: plain) ?? instance
    }
}
