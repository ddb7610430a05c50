import ActAsCore

/// Records encoded on the thread that made them, up to the part only the writer can add (`seq`,
/// `prev`, `hash`). An event loop encodes its request records as they complete and hands the
/// writer one of these every few milliseconds (a round): the loop's strings die on the loop, the
/// writer gets one buffer instead of a record per request, and it only numbers, hashes and
/// writes.
public struct EncodedAuditRecords: Sendable {
    /// Plain values only, so the array is freed without visiting its elements.
    struct Entry: Sendable {
        var timestamp: AuditTimestamp
        /// Where the record's body ends in `bytes` (it starts where the previous one ended).
        var end: Int
        /// Index into `sessionIDs` for records of an impersonation session (the store keeps a
        /// copy of those lines), else -1.
        var session: Int
    }

    private(set) var bytes: [UInt8] = []
    private(set) var entries: [Entry] = []
    private var sessionIDs: [String] = []

    public init() {}

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    /// Redacts and encodes a plain request's record now, from its fields, with the encoder the
    /// writer would use (`AuditLineEncoder.writeRequestBody`): the line is that of
    /// `AuditRecord(request:…)`.
    public mutating func appendRequest(
        _ fields: AuditRequestFields, timestamp: AuditTimestamp, requestID: RequestID, clientIP: String, status: Int,
        durationNanoseconds: Int64, detail: String? = nil, encoder: AuditLineEncoder
    ) {
        if bytes.capacity == 0 {
            // About a dozen plain records; a busier round grows the buffers by doubling.
            bytes.reserveCapacity(4096)
            entries.reserveCapacity(16)
        }
        encoder.writeRequestBody(
            fields, requestID: requestID, clientIP: clientIP, status: status, durationNanoseconds: durationNanoseconds,
            detail: detail, into: &bytes)
        var session = -1
        if let sessionID = fields.sessionID {
            session = sessionIDs.count
            sessionIDs.append(sessionID)
        }
        entries.append(Entry(timestamp: timestamp, end: bytes.count, session: session))
    }

    /// Calls `body` with each record's timestamp, session and encoded body, in order.
    func forEach(_ body: (AuditTimestamp, String?, UnsafeRawBufferPointer) -> Bool) {
        bytes.withUnsafeBytes { all in
            var start = 0
            for entry in entries {
                let sessionID = entry.session >= 0 ? sessionIDs[entry.session] : nil
                guard body(entry.timestamp, sessionID, UnsafeRawBufferPointer(rebasing: all[start..<entry.end])) else {
                    return
                }
                start = entry.end
            }
        }
    }
}
