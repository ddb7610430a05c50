import Foundation
import Testing

@testable import ActAsAudit

/// What the fuzz targets in Fuzz/ found, kept as tests.
@Suite struct FuzzFindingsTests {
    /// FuzzRedactor, after 603,863 runs: scrubbing once is not a fixpoint. The `-` of an
    /// `actas_` token ends a `-----BEGIN` label before it reaches `PRIVATE KEY`, so the text is
    /// not a PEM block; once the token is replaced by `[REDACTED]` the label runs on to
    /// `PRIVATE KEY` and a second pass would replace the rest. No key material is left either
    /// way (the "key" is only a header); the fix — scrub until nothing changes, a few passes at
    /// most — belongs in Redactor+Tokens.swift.
    @Test func scrubbingTwiceChangesNothingMore() {
        let input = "-----BEGINsss{ssssActas_ab-abcrssssssssssssssi\u{FFFD}\0\0\0)RPRIVATE KEY-----END--[A--"
        let once = defaultRedactor.scrubTokens(input)
        #expect(once.contains(Redactor.placeholder) && !once.contains("Actas_ab"))
        #expect(defaultRedactor.scrubTokens(once) == once)
    }

    static func multipart(_ partHeaders: String, _ content: String) -> AuditValue? {
        let body = "--XyZ\r\n\(partHeaders)\r\n\r\n\(content)\r\n--XyZ--\r\n"
        return defaultRedactor.redactBody(AuditCapturedBody(bytes: Array(body.utf8), contentType: "multipart/form-data; boundary=XyZ"))
    }

    /// FuzzMultipart, after 198,851 runs: of two Content-Disposition headers only the last was
    /// read, so a part whose first names `password` (what many parsers read) logged its value
    /// under the second's harmless name.
    @Test(arguments: [
        "Content-Disposition: form-data; name=\"password\"\r\nContent-Disposition: form-data; name=\"note\"",
        "Content-Disposition: form-data; name=\"note\"\r\nContent-Disposition: form-data; name=\"password\"",
        // A bare LF (or CR) ends a header line for many parsers.
        "Content-Type: text/plain\nContent-Disposition: form-data; name=\"password\"\r\nContent-Disposition: form-data; name=\"note\"",
        "Content-Disposition: form-data; name=\"note\"\rContent-Disposition: form-data; name=\"password\"",
    ])
    func everyContentDispositionOfAPartCounts(headers: String) throws {
        let logged = try #require(Self.multipart(headers, "hunter2-secret"))
        #expect(!logged.jsonText.contains("hunter2"), "\(logged.jsonText)")
    }

    @Test func aFilenameInAnyContentDispositionKeepsTheContentsOut() throws {
        let headers = "Content-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\nContent-Disposition: form-data; name=\"upload\""
        let logged = try #require(Self.multipart(headers, "private file contents"))
        #expect(logged.jsonText == #"{"upload":{"filename":"a.txt","bytes":21}}"#)
        // A filename seen only when lines end at CRLF alone (FuzzMultipart, second finding).
        let split = "Content-Disposition: form-data; name=x\n--\"y\"; filename=\"a.txt"
        let hidden = try #require(Self.multipart(split, "private file contents"))
        #expect(!hidden.jsonText.contains("private"), "\(hidden.jsonText)")
        // One disposition, as before.
        let plain = try #require(Self.multipart("Content-Disposition: form-data; name=\"note\"", "hello"))
        #expect(plain.jsonText == #"{"note":"hello"}"#)
    }
}
