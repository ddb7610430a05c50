import ActAsCore

/// Turns a record into one log line: redaction, fixed key order, escaping, `prev` and `hash`.
/// Appends into a buffer the caller reuses. The body (`writeBody`) may be encoded on the thread
/// that made the record; `seq`, `prev` and `hash` only on the writer thread.
public struct AuditLineEncoder: Sendable {
    public let redactor: Redactor
    /// `listen.instance_id`: every record says which instance wrote it (SPEC §10.2).
    public let instance: String?
    /// `,"instance":"…"`, escaped once here rather than per record.
    private let instanceMember: [UInt8]

    public init(redactor: Redactor, instance: String? = nil) {
        self.redactor = redactor
        self.instance = instance
        var member: [UInt8] = []
        if let instance {
            JSONWriter.writeRaw(#","instance":"#, into: &member)
            JSONWriter.writeString(instance, into: &member)
        }
        instanceMember = member
    }

    /// Keys an `extra` field may not take (it is written as `x_<key>` instead).
    private static let reservedKeys = Set(AuditRecord.keyOrder)

    /// Appends the record's complete line, `\n` included, to `out` and returns its hash.
    @discardableResult
    public func encode(_ record: AuditRecord, seq: UInt64, prev: AuditHash, into out: inout [UInt8]) -> AuditHash {
        let start = out.count
        Self.writeHead(timestamp: record.timestamp, seq: seq, into: &out)
        writeBody(record, into: &out)
        return Self.finish(prev: prev, lineStart: start, into: &out)
    }

    /// Appends a complete line from a body `writeBody` produced earlier (see `EncodedAuditRecords`).
    static func encode(
        body: UnsafeRawBufferPointer, timestamp: AuditTimestamp, seq: UInt64, prev: AuditHash, into out: inout [UInt8]
    ) -> AuditHash {
        let start = out.count
        writeHead(timestamp: timestamp, seq: seq, into: &out)
        out.append(contentsOf: body)
        return finish(prev: prev, lineStart: start, into: &out)
    }

    /// `{"ts":"…","seq":N,`: the part only the writer knows (`seq`) and what precedes it.
    private static func writeHead(timestamp: AuditTimestamp, seq: UInt64, into out: inout [UInt8]) {
        out.appendShortRun { run in
            run.put(#"{"ts":""#)
            timestamp.write(into: &run)
            run.put(#"","seq":"#)
            run.putUnsigned(seq)
            run.put(UInt8(ascii: ","))
        }
    }

    /// The members from `type` to the last `extra` field, redacted and escaped: everything of a
    /// line that does not depend on its place in the chain, so it can be encoded on the thread
    /// that made the record.
    public func writeBody(_ record: AuditRecord, into out: inout [UInt8]) {
        JSONWriter.writeRaw(#""type":""#, into: &out)
        out.append(contentsOf: record.type.rawValue.utf8)
        out.append(UInt8(ascii: "\""))

        writeText(",\"request_id\":", record.requestID, into: &out)
        writeRequestMembers(
            clientIP: record.clientIP, method: record.method, path: record.path, query: record.query,
            status: record.status, durationNanoseconds: record.durationNanoseconds,
            upstreamNanoseconds: record.upstreamNanoseconds, bytesIn: record.bytesIn, bytesOut: record.bytesOut,
            user: record.user, impersonator: record.impersonator, sessionID: record.sessionID, mode: record.mode,
            proto: record.proto, into: &out)
        if let headers = record.requestHeaders {
            JSONWriter.writeRaw(#","request_headers":"#, into: &out)
            JSONWriter.writeValue(redactor.redactHeaders(headers), into: &out)
        }
        if let body = record.requestBody, let value = redactor.redactBody(body) {
            JSONWriter.writeRaw(#","request_body":"#, into: &out)
            JSONWriter.writeValue(value, into: &out)
        }

        writeText(",\"client_request_id\":", record.clientRequestID, into: &out)
        writeText(",\"reason\":", record.reason, into: &out)
        if let endReason = record.endReason {
            JSONWriter.writeRaw(#","end_reason":""#, into: &out)
            out.append(contentsOf: endReason.rawValue.utf8)
            out.append(UInt8(ascii: "\""))
        }
        writeText(",\"actor\":", record.actor, into: &out)
        writeText(",\"target\":", record.target, into: &out)
        writeText(",\"justification\":", record.justification, into: &out)
        writeText(",\"auth_method\":", record.authMethod, into: &out)
        if let expiresAt = record.expiresAt {
            JSONWriter.writeRaw(#","expires_at":""#, into: &out)
            expiresAt.write(into: &out)
            out.append(UInt8(ascii: "\""))
        }
        writeText(",\"detail\":", record.detail, into: &out)
        out.append(contentsOf: instanceMember)
        for field in record.extra {
            out.append(UInt8(ascii: ","))
            let key = redactor.scrubTokens(field.key)
            JSONWriter.writeString(Self.reservedKeys.contains(key) ? "x_" + key : key, into: &out)
            out.append(UInt8(ascii: ":"))
            let value = redactor.isSensitiveName(field.key) ? .string(Redactor.placeholder) : scrubbed(field.value)
            JSONWriter.writeValue(value, into: &out)
        }
    }

    /// Writes exactly what `writeBody` writes for `AuditRecord(request: fields, …)` without
    /// headers or body, without building that record: the event loop's short path for plain
    /// requests. A unit test holds the two to the same bytes.
    public func writeRequestBody(
        _ fields: AuditRequestFields, requestID: RequestID, clientIP: String, status: Int, durationNanoseconds: Int64,
        detail: String?, into out: inout [UInt8]
    ) {
        // The request id is 32 hex digits of our own: nothing to scrub or escape.
        out.appendShortRun { run in
            run.put(#""type":"request","request_id":""#)
            run.put(length: RequestID.hexLength) { requestID.writeHex(into: $0) }
            run.put(UInt8(ascii: "\""))
        }
        writeRequestMembers(
            clientIP: clientIP, method: fields.method, path: fields.path, query: fields.query, status: status,
            durationNanoseconds: durationNanoseconds, upstreamNanoseconds: fields.upstreamNanoseconds,
            bytesIn: fields.bytesIn, bytesOut: fields.bytesOut, user: fields.user, impersonator: fields.impersonator,
            sessionID: fields.sessionID, mode: fields.mode, proto: fields.proto, into: &out)
        // A plain request has no headers, body, or event members between these.
        writeText(",\"client_request_id\":", fields.clientRequestID, into: &out)
        writeText(",\"detail\":", detail, into: &out)
        out.append(contentsOf: instanceMember)
    }

    /// The members from `client_ip` to `proto`, shared by both ways of encoding a request.
    @inline(__always)
    private func writeRequestMembers(
        clientIP: String?, method: String?, path: String?, query: String?, status: Int?, durationNanoseconds: Int64?,
        upstreamNanoseconds: Int64?, bytesIn: Int64?, bytesOut: Int64?, user: String?, impersonator: String?,
        sessionID: String?, mode: ImpersonationMode?, proto: String?, into out: inout [UInt8]
    ) {
        writeText(",\"client_ip\":", clientIP, into: &out)
        writeText(",\"method\":", method, into: &out)
        writeText(",\"path\":", path, into: &out)
        if let query, !query.isEmpty {
            JSONWriter.writeRaw(#","query":"#, into: &out)
            redactor.writeQuery(query, into: &out)
        }
        // At most 176 bytes: the numbers go in one append.
        out.appendShortRun { run in
            if let status {
                run.put(#","status":"#)
                run.putInteger(status)
            }
            if let durationNanoseconds {
                run.put(#","duration_ms":"#)
                run.putMilliseconds(nanoseconds: durationNanoseconds)
            }
            if let upstreamNanoseconds {
                run.put(#","upstream_ms":"#)
                run.putMilliseconds(nanoseconds: upstreamNanoseconds)
            }
            if let bytesIn {
                run.put(#","bytes_in":"#)
                run.putInteger(bytesIn)
            }
            if let bytesOut {
                run.put(#","bytes_out":"#)
                run.putInteger(bytesOut)
            }
        }
        writeText(",\"user\":", user, into: &out)
        writeText(",\"impersonator\":", impersonator, into: &out)
        writeText(",\"session_id\":", sessionID, into: &out)
        if let mode {
            JSONWriter.writeRaw(#","mode":""#, into: &out)
            out.append(contentsOf: mode.rawValue.utf8)
            out.append(UInt8(ascii: "\""))
        }
        writeText(",\"proto\":", proto, into: &out)
    }

    /// Appends `prev`, hashes the line from `lineStart` (SPEC §8), then appends `hash` and `\n`.
    private static func finish(prev: AuditHash, lineStart start: Int, into out: inout [UInt8]) -> AuditHash {
        // `L` is hashed where it is written, then its closing `}` becomes the `,` before `hash`.
        let hash = prev.withHexBytes(newline: true) { prevHexAndNewline in
            out.appendShortRun { run in
                run.put(#","prev":""#)
                run.put(UnsafeRawBufferPointer(rebasing: prevHexAndNewline[0..<64]))
                run.put(#""}"#)
            }
            return out.withUnsafeBytes {
                AuditChain.hash(prevHexAndNewline: prevHexAndNewline, lineWithoutHash: UnsafeRawBufferPointer(rebasing: $0[start...]))
            }
        }
        out[out.count - 1] = UInt8(ascii: ",")
        hash.withHexBytes { hashHex in
            out.appendShortRun { run in
                run.put(#""hash":""#)
                run.put(hashHex)
                run.put("\"}\n")
            }
        }
        return hash
    }

    @inline(__always)
    private func writeText(_ key: StaticString, _ value: String?, into out: inout [UInt8]) {
        guard let value else { return }
        JSONWriter.writeScrubbedMember(key, value, into: &out)
    }

    /// Extra values come from callers, not from the redactor: scrub their strings and apply the
    /// name rule to their object members.
    private func scrubbed(_ value: AuditValue) -> AuditValue {
        switch value {
        case .string(let text): return .string(redactor.scrubTokens(text))
        case .array(let elements): return .array(elements.map(scrubbed))
        case .object(let members):
            return .object(members.map { member in
                AuditValue.Member(
                    redactor.scrubTokens(member.key),
                    redactor.isSensitiveName(member.key) ? .string(Redactor.placeholder) : scrubbed(member.value))
            })
        case .number(let literal): return JSONNumber.isValidLiteral(literal) ? value : .string(redactor.scrubTokens(literal))
        default: return value
        }
    }
}
