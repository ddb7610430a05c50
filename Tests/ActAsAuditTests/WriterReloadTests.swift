import Foundation
import Testing

@testable import ActAsAudit

/// SIGHUP: `update` changes the redactor and the rotation size for records taken after it.
@Suite struct WriterReloadTests {
    @Test func updateAppliesToLaterRecordsAndTheEncoder() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("audit.jsonl")
        let writer = try AuditWriter(configuration: AuditWriterConfiguration(
            destination: .file(path), redactor: defaultRedactor, maxFileSize: 100 << 20))
        let done = Collected<Result<UInt64, AuditError>>()
        for index in 0..<20 { #expect(writer.append(sampleRequest(index), durable: true) { done.add($0) }) }
        #expect(done.wait(for: 20))
        #expect(writer.statistics.rotations == 0)

        let stricter = Redactor(redactKeys: ["colour"], redactHeaders: ["x-colour"], bodyCaptureBytes: 16)
        writer.update(redactor: stricter, maxFileSize: 2048)
        #expect(writer.configuration.redactor.bodyCaptureBytes == 16)
        #expect(writer.encoder.redactor.redactKeys == ["colour"])
        #expect(writer.configuration.destination == .file(path))
        for index in 20..<60 { #expect(writer.append(sampleRequest(index), durable: true) { done.add($0) }) }
        #expect(done.wait(for: 40))
        writer.close()
        #expect(writer.statistics.rotations > 0)
        let files = AuditFiles.chainOrder(for: path)
        #expect(AuditVerifier.verify(files: files) == .ok(records: 60, lastSeq: 60, anchorSeq: nil))
    }
}
