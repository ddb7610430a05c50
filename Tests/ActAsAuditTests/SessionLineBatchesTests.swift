import Synchronization
import Testing

@testable import ActAsAudit

@Suite struct SessionLineBatchesTests {
    static func lines(_ seqs: ClosedRange<UInt64>, session: String = "s1") -> [AuditSessionLine] {
        seqs.map { AuditSessionLine(sessionID: session, seq: $0, timestamp: AuditTimestamp(millisecondsSinceEpoch: 0), line: "{\"seq\":\($0)}") }
    }

    @Test func linesOfManyGroupCommitsArriveInOneBatch() async {
        let batches = AuditSessionLineBatches(gatherFor: .milliseconds(1))
        // Offered before the consumer runs: one gathering, so one delivery.
        batches.offer(Self.lines(1...3))
        batches.offer(Self.lines(4...4))
        batches.offer(Self.lines(5...9, session: "s2"))
        batches.finish()
        var delivered: [[AuditSessionLine]] = []
        await batches.run { delivered.append($0) }
        #expect(delivered.count == 1)
        #expect(delivered.flatMap { $0 }.map(\.seq) == Array(1...9))
    }

    @Test func everyLineIsDeliveredExactlyOnceWhileOffersRace() async {
        let batches = AuditSessionLineBatches(gatherFor: .milliseconds(1))
        let seen = Mutex<[UInt64]>([])
        let consumer = Task { await batches.run { lines in seen.withLock { $0 += lines.map(\.seq) } } }
        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<4 {
                group.addTask {
                    for round in 0..<200 {
                        let first = UInt64(producer * 10_000 + round * 10)
                        batches.offer(Self.lines(first...(first + 9)))
                        if round % 50 == 0 { await Task.yield() }
                    }
                }
            }
        }
        batches.finish()
        await consumer.value
        let all = seen.withLock { $0 }
        #expect(all.count == 4 * 200 * 10)
        #expect(Set(all).count == all.count)
    }

    @Test func linesOfferedAfterFinishAreStillTakenOnce() async {
        let batches = AuditSessionLineBatches(gatherFor: .milliseconds(1))
        batches.finish()
        batches.offer(Self.lines(1...2))
        var delivered: [UInt64] = []
        await batches.run { delivered += $0.map(\.seq) }
        #expect(delivered == [1, 2])
        #expect(batches.take().isEmpty)
    }
}
