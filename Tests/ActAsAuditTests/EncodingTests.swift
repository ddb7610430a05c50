import ActAsCore
import Foundation
import Testing

@testable import ActAsAudit

@Suite struct EncodingTests {
    @Test func requestRecordHasSpecKeyOrderAndFormats() throws {
        var record = sampleRequest()
        record.method = "POST"
        record.path = "/api/users"
        record.query = "token=abc"
        record.status = 201
        record.impersonator = "admin"
        record.sessionID = "imp_abc"
        record.mode = .readWrite
        record.requestHeaders = [AuditHeader("Authorization", "Basic dXNlcjpwYXNz")]
        record.requestBody = AuditCapturedBody(
            bytes: Array(#"{"name":"John Doe","password":"pw"}"#.utf8), contentType: "application/json")
        record.clientRequestID = "client-1"
        record.proto = "http/1.1"
        let line = encodeLine(record)
        #expect(line.hasPrefix(#"{"ts":"2026-11-06T10:15:23.123Z","seq":1,"type":"request","request_id":"req_0","client_ip":"192.0.2.10","method":"POST","path":"/api/users","query":{"token":"[REDACTED]"},"status":201,"duration_ms":3.2,"upstream_ms":2.1,"bytes_in":120,"bytes_out":55,"user":"jdoe","impersonator":"admin","session_id":"imp_abc","mode":"read-write","proto":"http/1.1","request_headers":{"authorization":"[REDACTED]"},"request_body":{"name":"John Doe","password":"[REDACTED]"},"client_request_id":"client-1","prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":""#))
        #expect(try topLevelKeys(line).last == "hash")
        #expect(!line.contains("\n"))
    }

    @Test func everyKeyInFixedOrderAndAbsentFieldsOmitted() throws {
        let full = AuditRecord(
            type: .impersonationEnded, timestamp: AuditTimestamp(millisecondsSinceEpoch: 0), requestID: "r",
            clientIP: "c", method: "m", path: "/p", query: "a=1", status: 1, durationNanoseconds: 1,
            upstreamNanoseconds: 1, bytesIn: 1, bytesOut: 1, user: "u", impersonator: "i", sessionID: "s",
            mode: .readOnly, proto: "h2", requestHeaders: [AuditHeader("h", "v")],
            requestBody: AuditCapturedBody(bytes: Array("a=1".utf8), contentType: "application/x-www-form-urlencoded"),
            clientRequestID: "x", reason: "r", endReason: .consentRevoked, actor: "a", target: "t",
            justification: "j", authMethod: "password", expiresAt: AuditTimestamp(millisecondsSinceEpoch: 1000),
            detail: "d", extra: [AuditField("user_agent", .string("curl")), AuditField("seq", .integer(5))])
        let keys = try topLevelKeys(encodeLine(full, instance: "eu-1"))
        let expected = AuditRecord.keyOrder.dropLast(2) + ["user_agent", "x_seq", "prev", "hash"]
        #expect(Array(expected.suffix(6)) == ["detail", "instance", "user_agent", "x_seq", "prev", "hash"])
        #expect(keys == Array(expected))

        let minimal = encodeLine(AuditRecord(type: .logout, timestamp: AuditTimestamp(millisecondsSinceEpoch: 0), user: "u"))
        #expect(try topLevelKeys(minimal) == ["ts", "seq", "type", "user", "prev", "hash"])
        #expect(!minimal.contains("null"))
        #expect(minimal.hasPrefix(#"{"ts":"1970-01-01T00:00:00.000Z","seq":1,"type":"logout","user":"u","prev":""#))
    }

    @Test func eventFields() throws {
        let line = encodeLine(AuditRecord(
            type: .impersonationEnded, user: "target", impersonator: "admin", sessionID: "imp_1", endReason: .expired))
        let object = try parseObject(line)
        #expect(object["type"] as? String == "impersonation_ended")
        #expect(object["end_reason"] as? String == "expired")
        let denied = try parseObject(encodeLine(AuditRecord(type: .requestDenied, reason: "read_only")))
        #expect(denied["reason"] as? String == "read_only")
        #expect(AuditEventType.allCases.map(\.rawValue) == [
            "request", "login", "login_failed", "logout", "consent_granted", "consent_revoked", "consent_expired",
            "impersonation_started", "impersonation_denied", "impersonation_ended", "request_denied",
        ])
    }

    @Test(arguments: [
        (Int64(0), "0.0"), (3_200_000, "3.2"), (57_000, "0.057"), (1_000_000, "1.0"), (12_345_678, "12.346"),
        (999, "0.001"), (400, "0.0"), (-5, "0.0"), (10_050_000, "10.05"), (86_400_000_000_000, "86400000.0"),
    ])
    func millisecondsNeverUseExponents(nanoseconds: Int64, expected: String) {
        var out: [UInt8] = []
        out.appendShortRun { $0.putMilliseconds(nanoseconds: nanoseconds) }
        #expect(String(decoding: out, as: UTF8.self) == expected)
    }

    static let referenceDigest = "b356bea24cfd8e1e8ac6f791db265a6590de9bdb4d2d7aa9c89c096696009334"

    @Test func hashHexRoundTripsInDigestOrder() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let hex = (0..<4).map { _ in { (digits: String) in String(repeating: "0", count: 16 - digits.count) + digits }(String(generator.next() as UInt64, radix: 16)) }.joined()
            let hash = try #require(AuditHash(hex: hex))
            #expect(hash.hex == hex)
            hash.withHexBytes(newline: true) { #expect(String(decoding: $0, as: UTF8.self) == hex + "\n") }
        }
        // The chain's first hash, against a digest computed elsewhere (sha256sum).
        let line = Array(#"{"ts":"2026-01-01T00:00:00.000Z","seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000"}"#.utf8)
        #expect(AuditChain.hash(prev: .genesis, lineWithoutHash: line).hex == Self.referenceDigest)
    }

    @Test func integersAndTimestamps() throws {
        var out: [UInt8] = []
        JSONWriter.writeInteger(Int64.min, into: &out)
        out.append(0x20)
        out.appendShortRun { $0.putUnsigned(UInt64.max) }
        #expect(String(decoding: out, as: UTF8.self) == "-9223372036854775808 18446744073709551615")
        #expect(AuditTimestamp(millisecondsSinceEpoch: 951_782_400_000).rfc3339 == "2000-02-29T00:00:00.000Z")
        #expect(AuditTimestamp(millisecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
        for ms: Int64 in [0, 1, 999, 1_793_960_123_123, 4_102_444_799_999, 951_868_799_999] {
            let timestamp = AuditTimestamp(millisecondsSinceEpoch: ms)
            #expect(AuditTimestamp.parse(timestamp.rfc3339) == timestamp)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            #expect(formatter.string(from: timestamp.date) == timestamp.rfc3339)
        }
        #expect(AuditTimestamp.parse("2026-11-01") == AuditTimestamp(millisecondsSinceEpoch: 1_793_491_200_000))
        #expect(AuditTimestamp.parse("2026-11-06T11:15:23+01:00")?.rfc3339 == "2026-11-06T10:15:23.000Z")
        #expect(AuditTimestamp.parse("2026-11-06T10:15:23.5Z")?.rfc3339 == "2026-11-06T10:15:23.500Z")
        for bad in ["", "2026-13-01", "2026-02-30", "2026-11-06T10:15", "2026-11-06T10:15:23", "yesterday", "2026-11-06Z"] {
            #expect(AuditTimestamp.parse(bad) == nil, "\(bad)")
        }
    }

    /// Strings that try to end the line, forge a record, or steer a terminal.
    static let hostile: [String] = [
        "/a\r\n{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":9,\"type\":\"login\"}\n",
        "\u{1B}[31mred\u{1B}[0m\u{1B}]0;title\u{07}",
        "line\u{2028}separator\u{2029}paragraph",
        "bidi\u{202E}txt.exe\u{202D}\u{202A}\u{202B}\u{202C}\u{2066}\u{2067}\u{2068}\u{2069}\u{200E}\u{200F}",
        "nul\u{0}byte\u{7F}del\u{85}nel\u{9B}csi\u{80}",
        "zero\u{200B}width\u{FEFF}bom\u{AD}shy\u{E0041}tag",
        "quote\"back\\slash\u{8}\u{C}\t",
        "emoji 😀 and 日本語 stay",
    ]

    @Test(arguments: hostile)
    func hostileStringsStayOnOneLineAndRoundTrip(_ text: String) throws {
        let record = AuditRecord(
            type: .request, requestID: text, method: text, path: text, query: "q=" + text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!,
            user: text, impersonator: text, requestHeaders: [AuditHeader("X-Note", text), AuditHeader(text, "v")],
            reason: text, justification: text, detail: text, extra: [AuditField(text, .string(text))])
        var out: [UInt8] = []
        AuditLineEncoder(redactor: defaultRedactor).encode(record, seq: 1, prev: .genesis, into: &out)
        // Exactly one line: the only control byte is the final newline.
        #expect(out.last == 0x0A)
        #expect(out.dropLast().allSatisfy { $0 >= 0x20 && $0 != 0x7F })
        let line = String(decoding: out.dropLast(), as: UTF8.self)
        // No C1, separators, bidi or other invisible format characters survive unescaped
        // (an independent list, not the encoder's own).
        let forbidden: [ClosedRange<UInt32>] = [
            0x80...0x9F, 0xAD...0xAD, 0x200B...0x200F, 0x2028...0x202E, 0x2066...0x2069, 0xFEFF...0xFEFF,
            0xE0000...0xE007F,
        ]
        for scalar in line.unicodeScalars {
            #expect(!forbidden.contains { $0.contains(scalar.value) }, "U+\(String(scalar.value, radix: 16)) written raw")
        }
        let object = try parseObject(line)
        for key in ["request_id", "method", "path", "user", "impersonator", "reason", "justification", "detail"] {
            #expect(object[key] as? String == text, "\(key)")
        }
        #expect((object["query"] as? [String: Any])?["q"] as? String == text)
        #expect((object["request_headers"] as? [String: Any])?["x-note"] as? String == text)
        #expect(object[text] as? String == text)
    }

    @Test func chainMatchesAnIndependentComputation() throws {
        var prev = AuditHash.genesis
        var lines: [String] = []
        let encoder = AuditLineEncoder(redactor: defaultRedactor)
        for seq in UInt64(1)...5 {
            var out: [UInt8] = []
            var record = sampleRequest(Int(seq))
            record.path = "/é\u{202E}\"\n\(seq)"
            prev = encoder.encode(record, seq: seq, prev: prev, into: &out)
            lines.append(String(decoding: out.dropLast(), as: UTF8.self))
        }
        var expectedPrev = String(repeating: "0", count: 64)
        for line in lines {
            let (computed, stored, linePrev) = try referenceHash(ofLine: line)
            #expect(linePrev == expectedPrev)
            #expect(computed == stored)
            #expect(stored.count == 64 && stored == stored.lowercased())
            expectedPrev = stored
        }
        #expect(expectedPrev == prev.hex)
        #expect(ReferenceSHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func auditValueJSONText() {
        let value = AuditValue.object([
            .init("a", .array([.integer(-1), .number("1.5e3"), .number("NaN"), .bool(true), .null])),
            .init("b\n", .string("c\u{2028}")),
        ])
        #expect(value.jsonText == #"{"a":[-1,1.5e3,"NaN",true,null],"b\u000a":"c\u2028"}"#)
    }

    /// The event loop encodes plain requests from their fields (`writeRequestBody`), the writer
    /// every other record from an `AuditRecord`: the two must give the same bytes, whatever the
    /// fields hold (absent ones, secrets, tokens, escapes, non-ASCII).
    @Test func requestFieldsEncodeExactlyAsTheRecordWould() {
        let texts: [String?] = [
            nil, "", "GET", "/api/items/7", "/a b/\u{1B}[31m\u{2028}\"q\"", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
            "Bearer abc.def", "actas_0123456789abcdef0123456789abcdef", "Zoë ☃", "\u{202E}gnp.exe",
        ]
        let queries: [String?] = [nil, "", "a=1&b=two", "token=S3NT1NEL&page=2", "pass%2577ord=x&a=%E2%80%A8", "a&&=&b"]
        let encoders = [AuditLineEncoder(redactor: defaultRedactor), AuditLineEncoder(redactor: defaultRedactor, instance: "node-\"a\"\u{1B}")]
        var generator = SystemRandomNumberGenerator()
        for trial in 0..<2_000 {
            let encoder = encoders[trial % 2]
            var fields = AuditRequestFields(
                method: texts.randomElement(using: &generator)!, path: texts.randomElement(using: &generator)!,
                query: queries.randomElement(using: &generator)!)
            fields.upstreamNanoseconds = Bool.random(using: &generator) ? nil : Int64.random(in: 0...10_000_000_000, using: &generator)
            fields.bytesIn = Int64.random(in: 0...(1 << 40), using: &generator)
            fields.bytesOut = Int64.random(in: 0...(1 << 40), using: &generator)
            fields.user = texts.randomElement(using: &generator)!
            fields.impersonator = texts.randomElement(using: &generator)!
            fields.sessionID = Bool.random(using: &generator) ? nil : "imp_\(trial)"
            fields.mode = [nil, .readOnly, .readWrite].randomElement(using: &generator)!
            fields.proto = [nil, "http/1.1", "h2"].randomElement(using: &generator)!
            fields.clientRequestID = texts.randomElement(using: &generator)!
            let requestID = RequestID(high: .random(in: .min ... .max, using: &generator), low: UInt64(trial))
            let clientIP = ["192.0.2.10", "2001:db8::1", "fe80::1%eth0"].randomElement(using: &generator)!
            let status = [200, 101, 499, 503].randomElement(using: &generator)!
            let duration = Int64.random(in: 0...100_000_000_000, using: &generator)
            let detail = texts.randomElement(using: &generator)!

            var direct: [UInt8] = []
            encoder.writeRequestBody(
                fields, requestID: requestID, clientIP: clientIP, status: status, durationNanoseconds: duration,
                detail: detail, into: &direct)
            var viaRecord: [UInt8] = []
            encoder.writeBody(
                AuditRecord(
                    request: fields, requestID: requestID, clientIP: clientIP, status: status,
                    durationNanoseconds: duration, detail: detail),
                into: &viaRecord)
            #expect(direct == viaRecord, "\(fields) \(String(decoding: viaRecord, as: UTF8.self))")
            if direct != viaRecord { return }
        }
    }

    /// SPEC §10.2: every record names the instance that wrote it, after the named members
    /// (so CSV exports keep their leading columns); a checkpoint names it once, where it is signed.
    @Test func everyRecordCarriesTheInstance() throws {
        let encoder = AuditLineEncoder(redactor: defaultRedactor, instance: "eu-1:9901")
        var out: [UInt8] = []
        encoder.encode(AuditRecord(type: .login, user: "alice", authMethod: "password"), seq: 7, prev: .genesis, into: &out)
        let line = String(decoding: out, as: UTF8.self)
        #expect(line.contains(#","user":"alice","auth_method":"password","instance":"eu-1:9901","prev":"#), "\(line)")
        var direct: [UInt8] = []
        encoder.writeRequestBody(AuditRequestFields(method: "GET", path: "/"), requestID: RequestID(high: 1, low: 2), clientIP: "192.0.2.1",
                                 status: 200, durationNanoseconds: 1, detail: nil, into: &direct)
        #expect(String(decoding: direct, as: UTF8.self).hasSuffix(#","bytes_out":0,"instance":"eu-1:9901""#), "\(String(decoding: direct, as: UTF8.self))")
        // Without an instance (tests, tools), nothing is added.
        var plain: [UInt8] = []
        AuditLineEncoder(redactor: defaultRedactor).encode(AuditRecord(type: .login), seq: 1, prev: .genesis, into: &plain)
        #expect(!String(decoding: plain, as: UTF8.self).contains("instance"))
    }

    @Test func requestIDIsThirtyTwoHexDigits() {
        let id = RequestID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)
        #expect(id.string == "0123456789abcdeffedcba9876543210")
        #expect(RequestID(high: 0, low: 1).string == "00000000000000000000000000000001")
    }

}
