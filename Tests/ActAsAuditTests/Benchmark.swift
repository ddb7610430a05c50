@testable import ActAsAudit
import ActAsCore
import Foundation
import Testing

/// Not a pass/fail test: prints ns per operation. Run once, optimised:
/// `ACTAS_AUDIT_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter AuditBenchmark`
@Suite struct AuditBenchmark {
    static let enabled = ProcessInfo.processInfo.environment["ACTAS_AUDIT_BENCH"] != nil

    static func typicalRecord(_ index: Int) -> AuditRecord {
        AuditRecord(
            type: .request, timestamp: AuditTimestamp(millisecondsSinceEpoch: 1_793_960_123_123 + Int64(index)),
            requestID: "0f8e2c1a9b7d4e3f", clientIP: "203.0.113.42", method: "GET", path: "/api/orders/12345",
            query: "page=2&sort=date", status: 200, durationNanoseconds: 3_215_000, upstreamNanoseconds: 2_104_000,
            bytesIn: 0, bytesOut: 1834, user: "jdoe")
    }

    /// The same request as the event loop has it.
    static func typicalFields() -> AuditRequestFields {
        var fields = AuditRequestFields(method: "GET", path: "/api/orders/12345", query: "page=2&sort=date")
        fields.upstreamNanoseconds = 2_104_000
        fields.bytesOut = 1834
        fields.user = "jdoe"
        return fields
    }

    static let typicalQuery = "page=2&sort=name&q=hello+world&token=abc123&filter=active"

    /// CPU time of this thread (other processes on a shared machine do not count).
    static func threadNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    /// Returns (ns per record, line length, ns per query redaction, ns per record body as an
    /// event loop encodes it, ns per line the writer completes from such a body).
    static func measure(iterations: Int = 200_000) -> (
        encode: Double, lineLength: Int, query: Double, body: Double, complete: Double
    ) {
        let redactor = Redactor(redactKeys: Redactor.defaultRedactKeys, redactHeaders: Redactor.defaultRedactHeaders)
        let encoder = AuditLineEncoder(redactor: redactor)
        let records = (0..<64).map(typicalRecord)
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        var prev = AuditHash.genesis
        var lineLength = 0
        for round in 0..<2 {  // warm-up, then measured
            let start = threadNanoseconds()
            for index in 0..<iterations {
                out.removeAll(keepingCapacity: true)
                prev = encoder.encode(records[index & 63], seq: UInt64(index + 1), prev: prev, into: &out)
            }
            let elapsed = threadNanoseconds() - start
            lineLength = out.count
            if round == 1 {
                let encodeNs = Double(elapsed) / Double(iterations)
                var sink = 0
                let queryStart = threadNanoseconds()
                for _ in 0..<iterations {
                    if case .object(let members)? = redactor.redactQuery(typicalQuery) { sink &+= members.count }
                }
                let queryNs = Double(threadNanoseconds() - queryStart) / Double(iterations)
                precondition(sink == 5 * iterations)
                let fields = typicalFields()
                var round = EncodedAuditRecords()
                let bodyStart = threadNanoseconds()
                for index in 0..<iterations {
                    round.appendRequest(
                        fields, timestamp: records[index & 63].timestamp, requestID: RequestID(high: 42, low: UInt64(index)),
                        clientIP: "203.0.113.42", status: 200, durationNanoseconds: 3_215_000, encoder: encoder)
                    if index & 31 == 31 { round = EncodedAuditRecords() }  // one event-loop round
                }
                let bodyNs = Double(threadNanoseconds() - bodyStart) / Double(iterations)
                // The writer's share: head, seq, prev, hash and the copy of the body.
                var bodies = EncodedAuditRecords()
                for index in 0..<64 {
                    bodies.appendRequest(
                        fields, timestamp: records[index].timestamp, requestID: RequestID(high: 42, low: UInt64(index)),
                        clientIP: "203.0.113.42", status: 200, durationNanoseconds: 3_215_000, encoder: encoder)
                }
                var chunk: [UInt8] = []
                chunk.reserveCapacity(64 * 1024)
                var seq: UInt64 = 1
                let completeStart = threadNanoseconds()
                for _ in 0..<(iterations / 64) {
                    chunk.removeAll(keepingCapacity: true)
                    bodies.forEach { timestamp, _, body in
                        prev = AuditLineEncoder.encode(body: body, timestamp: timestamp, seq: seq, prev: prev, into: &chunk)
                        seq += 1
                        return true
                    }
                }
                let completeNs = Double(threadNanoseconds() - completeStart) / Double(iterations / 64 * 64)
                return (encodeNs, lineLength, queryNs, bodyNs, completeNs)
            }
        }
        fatalError("unreachable")
    }

    @Test(.enabled(if: enabled)) func encodeHashAndRedact() {
        let result = Self.measure()
        print("audit bench: encode+hash \(Int(result.encode)) ns/record (\(result.lineLength)-byte line); body on the loop \(Int(result.body)) ns; writer completes a line \(Int(result.complete)) ns; redact query \(Int(result.query)) ns")
    }
}
