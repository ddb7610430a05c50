import ActAsCore
import Foundation
import Testing

@testable import ActAsAudit

/// The writer's signed checkpoints (SPEC §10.6): when they are written, what they say, and that
/// the store's hand-off only sees durable ones. The signature itself is ActAsCrypto's (tested
/// there); here a recording signer stands in, so the test sees exactly what was signed.
@Suite struct CheckpointWriterTests {
    /// What the signer was asked to sign, and the checkpoints handed on.
    final class Observed: Sendable {
        let signed = Collected<String>()
        let handed = Collected<AuditCheckpoint>()
    }

    func settings(every: Int = 1000, interval: Duration = .seconds(3600), instance: String = "edge-1",
                  observed: Observed) -> AuditCheckpointSettings {
        AuditCheckpointSettings(
            every: every, interval: interval, instance: instance,
            sign: { covers, head, instance in
                observed.signed.add("\(covers).\(head).\(instance)")
                return ("kid-test", "sig-\(covers)")
            },
            onCheckpoint: { observed.handed.add($0) })
    }

    func makeWriter(_ path: String, maxFileSize: Int64 = 100 << 20, checkpoints: AuditCheckpointSettings) throws -> AuditWriter {
        try AuditWriter(configuration: AuditWriterConfiguration(
            destination: .file(path), redactor: defaultRedactor, maxFileSize: maxFileSize, checkpoints: checkpoints))
    }

    func append(_ writer: AuditWriter, _ count: Int, from start: Int = 0) {
        let done = Collected<Bool>()
        for index in start..<(start + count) {
            #expect(writer.append(sampleRequest(index), durable: true) { done.add((try? $0.get()) != nil) })
        }
        #expect(done.wait(for: count))
    }

    func objects(_ path: String) throws -> [[String: Any]] {
        try readLines(path).map(parseObject)
    }

    @Test func everyNRecordsACheckpointCoversTheLastOne() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let observed = Observed()
        let writer = try makeWriter(path, checkpoints: settings(every: 3, observed: observed))
        append(writer, 7)
        #expect(observed.handed.wait(for: 2))
        let lines = readLines(path)
        let types = try lines.map { try parseObject($0)["type"] as? String }
        #expect(types == ["request", "request", "request", "checkpoint", "request", "request", "request", "checkpoint", "request"])
        let checkpoint = try parseObject(lines[3])
        let covered = try parseObject(lines[2])
        #expect(checkpoint["seq"] as? Int == 4)
        #expect(checkpoint["covers"] as? Int == 3)
        #expect(checkpoint["head"] as? String == covered["hash"] as? String)
        #expect(checkpoint["instance"] as? String == "edge-1")
        #expect(checkpoint["kid"] as? String == "kid-test")
        #expect(checkpoint["sig"] as? String == "sig-3")
        #expect(try topLevelKeys(lines[3]) == ["ts", "seq", "type", "covers", "head", "instance", "kid", "sig", "prev", "hash"])
        // What was signed is covers.head.instance, and the store gets the same values.
        #expect(observed.signed.values.first == "3.\(covered["hash"] as! String).edge-1")
        let handed = observed.handed.values[0]
        #expect(handed.seq == 4 && handed.covers == 3 && handed.head == covered["hash"] as? String)
        #expect(handed.instance == "edge-1" && handed.kid == "kid-test" && handed.sig == "sig-3")
        #expect(AuditTimestamp(handed.timestamp).rfc3339 == checkpoint["ts"] as? String)
        writer.close()
        #expect(AuditVerifier.verify(files: [path]).isOK)
    }

    @Test func shutdownSealsTheLogOnceAndRestartContinuesTheChain() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let observed = Observed()
        let writer = try makeWriter(path, checkpoints: settings(observed: observed))
        append(writer, 2)
        #expect(observed.handed.values.isEmpty)
        writer.close()
        var objects = try objects(path)
        #expect(objects.map { $0["type"] as? String } == ["request", "request", "checkpoint"])
        #expect(objects.last?["covers"] as? Int == 2)
        #expect(observed.handed.values.map(\.seq) == [3])

        // Nothing new since the last checkpoint: a restart and shutdown adds none.
        let again = try makeWriter(path, checkpoints: settings(observed: observed))
        again.close()
        #expect(readLines(path).count == 3)
        let third = try makeWriter(path, checkpoints: settings(observed: observed))
        append(third, 1, from: 2)
        third.close()
        objects = try self.objects(path)
        #expect(objects.map { $0["seq"] as? Int } == [1, 2, 3, 4, 5])
        #expect(objects.last?["covers"] as? Int == 4)
        #expect(AuditVerifier.verify(files: [path]) == .ok(records: 5, lastSeq: 5, anchorSeq: nil))
    }

    @Test func intervalCheckpointSealsRecordsWhenTrafficStops() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let observed = Observed()
        let writer = try makeWriter(path, checkpoints: settings(interval: .milliseconds(200), observed: observed))
        append(writer, 2)
        // No traffic follows: the writer wakes by itself for the checkpoint, once.
        #expect(observed.handed.wait(for: 1))
        #expect(observed.handed.values[0].covers == 2)
        append(writer, 1, from: 2)
        #expect(observed.handed.wait(for: 1))  // one more
        #expect(observed.handed.values.map(\.covers) == [2, 4])
        writer.close()
        #expect(try objects(path).map { $0["type"] as? String } == ["request", "request", "checkpoint", "request", "checkpoint"])
    }

    @Test func aRestartedLogWithoutAFinalCheckpointIsSealedByTheInterval() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let plain = try AuditWriter(configuration: AuditWriterConfiguration(destination: .file(path), redactor: defaultRedactor))
        _ = plain.append(sampleRequest(0))
        plain.close()  // as after a crash: no checkpoint at the end
        let observed = Observed()
        let writer = try makeWriter(path, checkpoints: settings(interval: .milliseconds(100), observed: observed))
        #expect(observed.handed.wait(for: 1))
        #expect(observed.handed.values[0].seq == 2 && observed.handed.values[0].covers == 1)
        writer.close()
    }

    @Test func everyRotatedFileEndsInACheckpointWithinTheSizeLimit() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let observed = Observed()
        let writer = try makeWriter(path, maxFileSize: 2048, checkpoints: settings(observed: observed))
        append(writer, 40)
        writer.close()
        let files = AuditFiles.chainOrder(for: path)
        #expect(files.count > 5)
        for file in files {
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            #expect(size <= 2048, "\(file)")
            let last = try #require(readLines(file).last)
            #expect(try parseObject(last)["type"] as? String == "checkpoint", "\(file)")
        }
        let all = try files.flatMap { try objects($0) }
        #expect(all.map { $0["seq"] as? Int } == Array(1...all.count))
        #expect(all.filter { $0["type"] as? String == "request" }.count == 40)
        #expect(AuditVerifier.verify(files: files).isOK)
        #expect(observed.handed.values.count == files.count)
    }

    @Test func aCheckpointIsHandedOnOnlyOnceDurable() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let observed = Observed()
        let writer = try makeWriter(path, checkpoints: settings(every: 2, observed: observed))
        append(writer, 1)
        try FileManager.default.removeItem(atPath: path)  // the next batch writes into a deleted file
        let failed = Collected<Bool>()
        #expect(writer.append(sampleRequest(1), durable: true) { failed.add((try? $0.get()) == nil) })
        #expect(failed.wait(for: 1))
        #expect(failed.values == [true])
        #expect(observed.handed.values.isEmpty)
        writer.close()
    }
}
