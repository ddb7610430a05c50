import ActAsCore
import Foundation
import Synchronization
import Testing

@testable import ActAsAudit

@Suite struct WriterTests {
    func makeWriter(_ path: String, maxFileSize: Int64 = 100 << 20, queueCapacity: Int = 16_384,
                    errors: Collected<AuditError>? = nil) throws -> AuditWriter {
        try AuditWriter(
            configuration: AuditWriterConfiguration(
                destination: .file(path), redactor: defaultRedactor, maxFileSize: maxFileSize, queueCapacity: queueCapacity),
            onError: { error in errors?.add(error) })
    }

    /// Appends and waits for each completion; returns the seqs.
    @discardableResult
    func appendAndWait(_ writer: AuditWriter, count: Int, durable: Bool = false, startIndex: Int = 0) -> [UInt64] {
        let results = Collected<Result<UInt64, AuditError>>()
        for index in 0..<count {
            #expect(writer.append(sampleRequest(startIndex + index), durable: durable) { results.add($0) })
        }
        #expect(results.wait(for: count))
        return results.values.compactMap { try? $0.get() }
    }

    /// Appends record 0 and keeps the writer thread inside its completion until the returned
    /// semaphore is signalled: everything appended meanwhile waits in the queue.
    func holdWriterThread(_ writer: AuditWriter) -> DispatchSemaphore {
        let release = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        #expect(writer.append(sampleRequest(0)) { _ in
            entered.signal()
            release.wait()
        })
        #expect(entered.wait(timeout: .now() + 10) == .success)
        return release
    }

    /// Encodes a plain request into an event loop's round, as the proxy does; returns the record
    /// the writer would have encoded to the same bytes.
    @discardableResult
    func encodedRequest(
        _ fields: AuditRequestFields, index: Int, into round: inout EncodedAuditRecords, encoder: AuditLineEncoder
    ) -> AuditRecord {
        let timestamp = AuditTimestamp(millisecondsSinceEpoch: 1_793_960_123_123 + Int64(index))
        let requestID = RequestID(high: 7, low: UInt64(index))
        round.appendRequest(
            fields, timestamp: timestamp, requestID: requestID, clientIP: "192.0.2.10", status: 200,
            durationNanoseconds: 3_200_000, encoder: encoder)
        return AuditRecord(
            request: fields, timestamp: timestamp, requestID: requestID, clientIP: "192.0.2.10", status: 200,
            durationNanoseconds: 3_200_000, detail: nil)
    }

    func seqs(_ path: String) -> [UInt64] {
        readLines(path).compactMap { AuditLogEntry(line: $0)?.seq }
    }

    @Test func manyThreadsAppendingMakeOneChain() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("logs/audit.jsonl")  // the directory is created
        let writer = try makeWriter(path)
        let results = Collected<Result<UInt64, AuditError>>()
        let threads = 8, perThread = 400
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<perThread {
                var record = sampleRequest(thread * perThread + index)
                record.user = "user\(thread)"
                let durable = index % 10 == 0
                while !writer.append(record, durable: durable, completion: { results.add($0) }) { usleep(100) }
            }
        }
        #expect(results.wait(for: threads * perThread))
        writer.close()
        let assigned = results.values.compactMap { try? $0.get() }.sorted()
        #expect(assigned == Array(1...UInt64(threads * perThread)))
        #expect(seqs(path) == Array(1...UInt64(threads * perThread)))
        #expect(AuditVerifier.verify(files: [path]) == .ok(records: threads * perThread, lastSeq: UInt64(threads * perThread), anchorSeq: nil))
        // An independent check of every link.
        var prev = String(repeating: "0", count: 64)
        for line in readLines(path) {
            let (computed, stored, linePrev) = try referenceHash(ofLine: line)
            #expect(linePrev == prev)
            #expect(computed == stored)
            prev = stored
        }
        let statistics = writer.statistics
        #expect(statistics.written == UInt64(threads * perThread))
        #expect(statistics.lastSeq == UInt64(threads * perThread))
        #expect(statistics.dropped == 0 && statistics.failed == 0)
    }

    @Test func durableCompletionComesAfterTheLineIsOnDiskAndFsyncsAreShared() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let writer = try makeWriter(path)
        // Hold the writer thread so every durable record below is queued when it wakes up.
        let release = holdWriterThread(writer)
        let observed = Collected<Bool>()
        let count = 300
        DispatchQueue.concurrentPerform(iterations: 6) { thread in
            for index in 0..<(count / 6) {
                _ = writer.append(sampleRequest(thread * 1000 + index), durable: true) { result in
                    // The completion runs only once the line can be read back from the file.
                    guard case .success(let seq) = result else { return observed.add(false) }
                    observed.add(readLines(path).contains { AuditLogEntry(line: $0)?.seq == seq })
                }
            }
        }
        #expect(writer.statistics.syncs == 0)
        release.signal()
        #expect(observed.wait(for: count))
        #expect(observed.values.allSatisfy { $0 })
        // Group commit: one fsync for the whole batch, not one per record.
        #expect(writer.statistics.syncs == 1)
        // A lone durable record still gets its own fsync promptly.
        #expect(appendAndWait(writer, count: 1, durable: true) == [UInt64(count + 2)])
        #expect(writer.statistics.syncs == 2)
        writer.close()
    }

    @Test func fullQueueRefusesAtOnce() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let writer = try makeWriter(path, queueCapacity: 4)
        // Hold the writer thread inside a completion so the queue cannot drain.
        let release = holdWriterThread(writer)
        for index in 1...4 { #expect(writer.append(sampleRequest(index))) }
        let clock = ContinuousClock()
        var refused = false
        let elapsed = clock.measure { refused = !writer.append(sampleRequest(5), durable: true) { _ in Issue.record("a refused record must not complete") } }
        #expect(refused)
        #expect(elapsed < .milliseconds(50))
        #expect(writer.statistics.dropped == 1)
        #expect(writer.statistics.queued == 4)
        release.signal()
        writer.close()
        #expect(seqs(path) == [1, 2, 3, 4, 5])
        #expect(!writer.append(sampleRequest(6)))  // closed
    }

    /// An event loop's round of records, encoded where they were made, takes its place in the
    /// one chain in queue order, across rotations, byte for byte as if the writer had encoded it.
    @Test func encodedRoundsJoinTheChainInQueueOrder() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let copies = Collected<AuditSessionLine>()
        let writer = try AuditWriter(configuration: AuditWriterConfiguration(
            destination: .file(path), redactor: defaultRedactor, maxFileSize: 4096,
            onSessionLines: { lines in for line in lines { copies.add(line) } }))
        var expected: [AuditRecord] = []
        for round in 0..<20 {
            var encoded = EncodedAuditRecords()
            for index in 0..<5 {
                var fields = AuditRequestFields(method: "GET", path: "/api/items/\(index)", query: "page=\(round)&token=SNTL\(index)")
                fields.user = "jdoe"
                if index == 2 { fields.sessionID = "imp_\(round)" }
                let record = encodedRequest(fields, index: round * 10 + index, into: &encoded, encoder: writer.encoder)
                expected.append(record)
            }
            #expect(encoded.count == 5)
            #expect(writer.append(encoded: encoded))
            let single = sampleRequest(round * 10 + 9)
            #expect(writer.append(single))
            expected.append(single)
        }
        #expect(writer.append(encoded: EncodedAuditRecords()))  // nothing to do
        writer.close()
        let files = AuditFiles.chainOrder(for: path)
        #expect(files.count > 2)
        let lines = files.flatMap(readLines)
        #expect(lines.count == expected.count)
        #expect(AuditVerifier.verify(files: files) == .ok(records: expected.count, lastSeq: UInt64(expected.count), anchorSeq: nil))
        var prev = AuditHash.genesis
        for (index, line) in lines.enumerated() {
            // The same bytes the writer produces from the record itself.
            var reference: [UInt8] = []
            prev = AuditLineEncoder(redactor: defaultRedactor).encode(expected[index], seq: UInt64(index + 1), prev: prev, into: &reference)
            #expect(line + "\n" == String(decoding: reference, as: UTF8.self))
            #expect(!line.contains("SNTL"))
        }
        // Records of a session are copied for the store, also from encoded rounds.
        #expect(copies.wait(for: 20))
        let copied = copies.values
        #expect(copied.map(\.sessionID) == (0..<20).map { "imp_\($0)" })
        for copy in copied { #expect(lines[Int(copy.seq) - 1] == copy.line) }
        #expect(writer.statistics.written == UInt64(expected.count))
    }

    @Test func encodedRoundsCountAgainstTheQueueCapacity() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let writer = try makeWriter(path, queueCapacity: 4)
        let release = holdWriterThread(writer)
        var round = EncodedAuditRecords()
        for index in 1...3 { encodedRequest(AuditRequestFields(method: "GET", path: "/"), index: index, into: &round, encoder: writer.encoder) }
        #expect(writer.append(encoded: round))
        #expect(writer.statistics.queued == 3)
        #expect(writer.append(sampleRequest(4)))
        // Full: a round is refused whole and counted as dropped, record by record.
        #expect(!writer.append(encoded: round))
        #expect(writer.statistics.dropped == 3)
        release.signal()
        writer.close()
        #expect(seqs(path) == [1, 2, 3, 4, 5])
        #expect(!writer.append(encoded: round))  // closed
    }

    @Test func rotationKeepsSeqAndChain() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let writer = try makeWriter(path, maxFileSize: 2048)
        appendAndWait(writer, count: 60, durable: true)
        writer.close()
        let files = AuditFiles.chainOrder(for: path)
        #expect(files.count > 5)
        #expect(files.last == path)
        #expect(files.first == path + ".000000000001")
        for file in files {
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            #expect(size <= 2048, "\(file)")
            let fileSeqs = seqs(file)
            if file != path { #expect(file.hasSuffix(String(format: ".%012llu", fileSeqs.first ?? 0))) }
        }
        #expect(files.flatMap(seqs) == Array(1...60))
        #expect(AuditVerifier.verify(files: files) == .ok(records: 60, lastSeq: 60, anchorSeq: nil))
        #expect(writer.statistics.rotations == UInt64(files.count - 1))
        // Any suffix of the files verifies on its own, anchored.
        let tail = Array(files.suffix(2))
        guard case .ok(_, 60, let anchor?) = AuditVerifier.verify(files: tail) else {
            Issue.record("suffix did not verify")
            return
        }
        #expect(anchor == seqs(tail[0]).first)
    }

    @Test func restartContinuesTheChain() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        var writer = try makeWriter(path)
        appendAndWait(writer, count: 5)
        writer.close()
        writer = try makeWriter(path)
        #expect(writer.nextSeq == 6)
        #expect(appendAndWait(writer, count: 5).sorted() == [6, 7, 8, 9, 10])
        writer.close()
        #expect(AuditVerifier.verify(files: [path]) == .ok(records: 10, lastSeq: 10, anchorSeq: nil))
    }

    @Test func restartAfterRotationWithEmptyCurrentFile() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let writer = try makeWriter(path, maxFileSize: 1024)
        appendAndWait(writer, count: 12)
        writer.close()
        // As if the process died right after a rotation: the current file is empty or missing.
        try FileManager.default.moveItem(atPath: path, toPath: AuditFiles.rotatedPath(for: path, firstSeq: seqs(path).first!))
        for createEmpty in [false, true] {
            if createEmpty { _ = FileManager.default.createFile(atPath: path, contents: Data()) }
            let restarted = try makeWriter(path, maxFileSize: 1024)
            #expect(restarted.nextSeq == 13)
            restarted.close()
        }
        let restarted = try makeWriter(path, maxFileSize: 1024)
        appendAndWait(restarted, count: 3)
        restarted.close()
        #expect(AuditVerifier.verify(files: AuditFiles.chainOrder(for: path)) == .ok(records: 15, lastSeq: 15, anchorSeq: nil))
    }

    @Test func reopenAfterTheFileWasMoved() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let moved = directory.file("audit.jsonl.1")
        let writer = try makeWriter(path)
        appendAndWait(writer, count: 5)
        try FileManager.default.moveItem(atPath: path, toPath: moved)
        writer.reopen()
        appendAndWait(writer, count: 5, startIndex: 5)
        writer.close()
        #expect(seqs(moved) == [1, 2, 3, 4, 5])
        #expect(seqs(path) == [6, 7, 8, 9, 10])
        #expect(AuditVerifier.verify(files: [moved, path]) == .ok(records: 10, lastSeq: 10, anchorSeq: nil))
        // Reopening when nothing moved keeps appending to the same file.
        let again = try makeWriter(path)
        again.reopen()
        appendAndWait(again, count: 2)
        again.close()
        #expect(seqs(path) == [6, 7, 8, 9, 10, 11, 12])
    }

    @Test func moveWithoutReopenIsNoticed() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let moved = directory.file("moved.jsonl")
        let writer = try makeWriter(path)
        appendAndWait(writer, count: 3)
        try FileManager.default.moveItem(atPath: path, toPath: moved)
        usleep(1_100_000)
        appendAndWait(writer, count: 3)
        writer.close()
        #expect(seqs(moved) == [1, 2, 3])
        #expect(seqs(path) == [4, 5, 6])
        #expect(AuditVerifier.verify(files: [moved, path]).isOK)
    }

    @Test func partialLastLineStartsANewFile() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        var writer = try makeWriter(path)
        appendAndWait(writer, count: 5)
        writer.close()
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"ts":"2026-11-06T10:15:23.123Z","seq":6,"type":"requ"#.utf8))
        handle.closeFile()

        let errors = Collected<AuditError>()
        writer = try makeWriter(path, errors: errors)
        #expect(errors.wait(for: 1))
        #expect(errors.values.first?.kind == .recovery)
        #expect(errors.values.first?.message.contains("incomplete") == true)
        appendAndWait(writer, count: 3)
        writer.close()
        let aside = path + ".000000000001"
        #expect(seqs(aside) == [1, 2, 3, 4, 5])
        #expect(seqs(path) == [6, 7, 8])
        // The new file verifies on its own; the whole log shows the torn record.
        #expect(AuditVerifier.verify(files: [path]) == .ok(records: 3, lastSeq: 8, anchorSeq: 6))
        let whole = AuditVerifier.verify(files: AuditFiles.chainOrder(for: path))
        #expect(whole.summary.hasPrefix("broken at seq 6 (\(aside):6): incomplete"))
    }

    @Test func tamperedLastLineIsSetAsideAndChainContinuesFromTheLastGoodRecord() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        var writer = try makeWriter(path)
        appendAndWait(writer, count: 4)
        writer.close()
        var lines = readLines(path)
        lines[3] = lines[3].replacingOccurrences(of: "jdoe", with: "eve!")
        writeLines(lines, to: path)
        let errors = Collected<AuditError>()
        writer = try makeWriter(path, errors: errors)
        #expect(writer.nextSeq == 4)
        appendAndWait(writer, count: 2)
        writer.close()
        #expect(errors.values.first?.kind == .recovery)
        #expect(seqs(path) == [4, 5])
        let whole = AuditVerifier.verify(files: AuditFiles.chainOrder(for: path))
        #expect(whole.summary.hasPrefix("broken at seq 4 (\(path).000000000001:4): hash mismatch"))
    }

    @Test func writeFailuresAreReportedAndTheWriterRecovers() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let real = directory.file("real.jsonl")
        // The log path points at /dev/full: every write fails with ENOSPC.
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/full")
        let errors = Collected<AuditError>()
        let writer = try makeWriter(path, errors: errors)
        let failed = Collected<Result<UInt64, AuditError>>()
        #expect(writer.append(sampleRequest(0), durable: true) { failed.add($0) })
        #expect(failed.wait(for: 1))
        guard case .failure(let error) = failed.values[0] else {
            Issue.record("write to a full disk succeeded")
            return
        }
        #expect(error.kind == .write)
        #expect(error.code == ENOSPC)
        #expect(errors.wait(for: 1))
        #expect(errors.values[0].kind == .write)
        #expect(writer.statistics.failed == 1)

        // Space comes back: the writer reopens the path by itself and the chain starts cleanly.
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: real)
        #expect(appendAndWait(writer, count: 3, durable: true) == [1, 2, 3])
        writer.close()
        #expect(errors.values.contains { $0.kind == .recovered })
        #expect(AuditVerifier.verify(files: [real]) == .ok(records: 3, lastSeq: 3, anchorSeq: nil))
    }

    @Test func deletedFileFailsDurableRecordsThenRecovers() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let errors = Collected<AuditError>()
        let writer = try makeWriter(path, errors: errors)
        appendAndWait(writer, count: 3)
        try FileManager.default.removeItem(atPath: path)
        let results = Collected<Result<UInt64, AuditError>>()
        #expect(writer.append(sampleRequest(3), durable: true) { results.add($0) })
        #expect(results.wait(for: 1))
        guard case .failure(let error) = results.values[0] else {
            Issue.record("a durable record written into a deleted file was acknowledged")
            return
        }
        #expect(error.kind == .fileReplaced)
        #expect(appendAndWait(writer, count: 2, durable: true) == [5, 6])
        writer.close()
        #expect(seqs(path) == [5, 6])
        // The new file continues the chain, but the file with seq 1–4 is gone: verify says so.
        let alone = AuditVerifier.verify(files: [path])
        #expect(alone.summary.hasPrefix("broken at seq 5 (\(path):1): the log starts at seq 5, not 1"))
    }

    @Test func unwritableLocationFailsAtStart() {
        #expect(throws: AuditError.self) {
            _ = try AuditWriter(configuration: AuditWriterConfiguration(
                destination: .file("/proc/actas-audit-test/audit.jsonl"), redactor: defaultRedactor))
        }
    }

    @Test func closeFlushesEverything() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let writer = try makeWriter(path)
        for index in 0..<1000 { #expect(writer.append(sampleRequest(index))) }
        writer.close()
        #expect(seqs(path).count == 1000)
        writer.close()  // idempotent
    }
}
