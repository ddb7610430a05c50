import ActAsTestSupport
import Foundation
import Testing

@testable import ActAsAudit

/// Every secret below contains "SNTL"; no encoded line may contain it. Harmless values contain
/// "VISIBLE" and must survive (redaction that eats everything is no redaction).
@Suite struct RedactionTests {
    let redactor = defaultRedactor

    func line(headers: [AuditHeader]? = nil, query: String? = nil, body: AuditCapturedBody? = nil,
              redactor: Redactor = defaultRedactor) -> String {
        encodeLine(AuditRecord(type: .request, path: "/x", query: query, requestHeaders: headers, requestBody: body), redactor: redactor)
    }

    func bodyValue(_ bytes: [UInt8], type: String?, encoding: String? = nil, total: Int64? = nil,
                   redactor: Redactor = defaultRedactor) throws -> [String: Any] {
        let text = line(body: AuditCapturedBody(bytes: bytes, totalBytes: total, contentType: type, contentEncoding: encoding), redactor: redactor)
        #expect(!text.contains("SNTL"), "\(text)")
        return try #require(try parseObject(text)["request_body"] as? [String: Any])
    }

    @Test func sensitiveNames() {
        for name in ["password", "userPassword", "API_KEY", "api-key", "apiKey", "X-Api-Key", "clientSecret", "PRIVATE-KEY",
                     "pass word", "user[password]", "x-auth-token", "Proxy-Authorization", "credentials", "SSN", "csrf_token"] {
            #expect(redactor.isSensitiveName(name), "\(name)")
        }
        for name in ["username", "page", "email", "q", "sort", "name"] {
            #expect(!redactor.isSensitiveName(name), "\(name)")
        }
        #expect(Redactor(redactKeys: ["contraseña"], redactHeaders: []).isSensitiveName("CONTRASEÑA_nueva"))
        #expect(!Redactor(redactKeys: ["", "  "], redactHeaders: []).isSensitiveName("anything"))
    }

    @Test func tokensInFreeText() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SNTLdozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
        let cases: [(String, String)] = [
            ("Authorization: Bearer SNTLabc.def-ghi~jkl+/==, next", "Authorization: [REDACTED], next"),
            ("bearer\tSNTLx", "[REDACTED]"),
            ("forbearer SNTLnot", "forbearer SNTLnot"),
            ("id=\(jwt)&x=1", "id=[REDACTED]&x=1"),
            ("jwe eyJhbGciOiJkaXIifQ..SNTLiv.SNTLct.SNTLtag end", "jwe [REDACTED] end"),
            ("detached eyJhbGciOiJFUzI1NiJ9..SNTLsig", "detached [REDACTED]"),
            ("key actas_SNTL0123456789abcdefghijklmnopqrstuvwxyzABCDEFG!", "key [REDACTED]!"),
            ("ACTAS_SNTL0123456789abcdefghij", "[REDACTED]"),
            ("__Host-actas_session=x", "__Host-actas_session=x"),
            ("just eyJhbGciOiJIUzI1NiJ9 header", "just eyJhbGciOiJIUzI1NiJ9 header"),
            ("nothing here", "nothing here"),
        ]
        for (input, expected) in cases {
            #expect(redactor.scrubTokens(input) == expected, "\(input)")
        }
    }

    @Test func headers() throws {
        let headers = [
            AuditHeader("Authorization", "Bearer SNTLh1"),
            AuditHeader("PROXY-AUTHORIZATION", "Basic SNTLh2"),
            AuditHeader("Cookie", "sid=SNTLh3; theme=SNTLh4;SNTLh5"),
            AuditHeader("cookie", "second=SNTLh6"),
            AuditHeader("Set-Cookie", "sid=SNTLh7; Path=/; HttpOnly; Secure"),
            AuditHeader("X-Api-Key", "SNTLh8"),
            AuditHeader("x-AUTH-token", "SNTLh9"),
            AuditHeader("X-Note", "VISIBLE but eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.SNTLh10 and Bearer SNTLh11"),
            AuditHeader("Accept", "text/html VISIBLE"),
        ]
        let text = line(headers: headers)
        #expect(!text.contains("SNTL"), "\(text)")
        let logged = try #require(try parseObject(text)["request_headers"] as? [String: Any])
        #expect(logged["authorization"] as? String == "[REDACTED]")
        #expect(logged["proxy-authorization"] as? String == "[REDACTED]")
        #expect(logged["cookie"] as? [String] == ["sid=[REDACTED]; theme=[REDACTED]; [REDACTED]", "second=[REDACTED]"])
        #expect(logged["set-cookie"] as? String == "sid=[REDACTED]; Path=[REDACTED]; HttpOnly; Secure")
        #expect(logged["x-api-key"] as? String == "[REDACTED]")
        #expect(logged["x-auth-token"] as? String == "[REDACTED]")
        #expect(logged["x-note"] as? String == "VISIBLE but [REDACTED] and [REDACTED]")
        #expect(logged["accept"] as? String == "text/html VISIBLE")

        // Cookies stay readable when the operator takes `cookie` off the list, but cookies
        // named like a secret still lose their value.
        let lenient = Redactor(redactKeys: Redactor.defaultRedactKeys, redactHeaders: ["authorization"])
        let lenientText = line(headers: [AuditHeader("Cookie", "theme=VISIBLE; auth_token=SNTLh12")], redactor: lenient)
        #expect(!lenientText.contains("SNTL"))
        #expect((try parseObject(lenientText)["request_headers"] as? [String: Any])?["cookie"] as? String
            == "theme=VISIBLE; auth_token=[REDACTED]")
    }

    @Test func query() throws {
        let query = "page=1&token=SNTLq1&pass%77ord=SNTLq2&API-Key=SNTLq3&q=Bearer+SNTLq4&note=actas_SNTLq5aaaaaaaaaaaaaaaaa"
            + "&pass+word=SNTLq6&password=SNTLq7&password=SNTLq8&id=eyJhbGciOi.eyJTTlRM.SNTLq9&flag&name=John+Doe%21"
            + "&a=1;secret=SNTLq10&bad=%ZZ%FF&x%5Bpassword%5D=SNTLq11"
        let text = line(query: query)
        #expect(!text.contains("SNTL"), "\(text)")
        let logged = try #require(try parseObject(text)["query"] as? [String: Any])
        #expect(logged["page"] as? String == "1")
        #expect(logged["token"] as? String == "[REDACTED]")
        #expect(logged["password"] as? [String] == ["[REDACTED]", "[REDACTED]", "[REDACTED]"])
        #expect(logged["API-Key"] as? String == "[REDACTED]")
        #expect(logged["q"] as? String == "[REDACTED]")
        #expect(logged["note"] as? String == "[REDACTED]")
        #expect(logged["pass word"] as? String == "[REDACTED]")
        #expect(logged["id"] as? String == "[REDACTED]")
        #expect(logged["flag"] as? String == "")
        #expect(logged["name"] as? String == "John Doe!")
        #expect(logged["secret"] as? String == "[REDACTED]")
        #expect(logged["bad"] as? String == "%ZZ\u{FFFD}")
        #expect(logged["x[password]"] as? String == "[REDACTED]")
        // Key order follows first appearance.
        let keys = try #require(AuditLogEntry(line: text)?["query"]?.members).map(\.key)
        #expect(keys.prefix(4) == ["page", "token", "password", "API-Key"])
        #expect(redactor.redactQuery("") == nil)
        #expect(!line(query: "").contains("\"query\""))
    }

    /// The short path for plain queries must write exactly what the general path writes, and
    /// must hand everything it cannot do to the general path.
    @Test func plainQueriesTakeTheShortPathWithTheSameResult() throws {
        let plain = [
            "page=2", "page=2&sort=date", "token=SNTLa&page=1", "Password=SNTLb", "user_api_key=SNTLc;x=1",
            "flag", "flag&other=", "=nameless", "a=b=c", "&&a=1&&", "x[password]=SNTLd", "PASSWD=SNTLe&passwd2=SNTLf", "q=Bearer",
            String(repeating: "n", count: 300) + "=" + String(repeating: "v", count: 300),
            // The most the short path's output can outgrow its input: every value redacted and empty.
            (1...16).map { "password\($0)=" }.joined(separator: "&"), (1...16).map { "x\($0)pass" }.joined(separator: "&"),
        ]
        let general = [
            "a=1&a=2", "pass%77ord=SNTLg", "q=hello+world", "q=%41", "note=actas_SNTLhaaaaaaaaaaaaaaaaa",
            "id=eyJhbGciOi.eyJTTlRM.SNTLi", "eyJhbGciOi.eyJTTlRM.SNTLj=1", "q=Bearer+SNTLk", "say=\"hi\"", "p=a\\b",
            "t=tab\there", "u=caf\u{E9}", (1...17).map { "k\($0)=v" }.joined(separator: "&"), "a=1&a",
            // Longer than the short path composes on the stack.
            String(repeating: "n", count: 600) + "=" + String(repeating: "v", count: 600),
        ]
        for (query, short) in plain.map({ ($0, true) }) + general.map({ ($0, false) }) {
            var fast: [UInt8] = []
            let taken = query.utf8.withContiguousStorageIfAvailable { redactor.writePlainQuery($0, into: &fast) }
            #expect(taken == short, "\(query)")
            #expect(short || fast.isEmpty, "\(query)")
            var viaWriteQuery: [UInt8] = []
            redactor.writeQuery(query, into: &viaWriteQuery)
            var expected: [UInt8] = []
            JSONWriter.writeValue(try #require(redactor.redactQuery(query)), into: &expected)
            #expect(String(decoding: viaWriteQuery, as: UTF8.self) == String(decoding: expected, as: UTF8.self), "\(query)")
            #expect(!String(decoding: viaWriteQuery, as: UTF8.self).contains("SNTL"), "\(query)")
        }
    }

    @Test func manyRepeatedNamesStayLinear() {
        let query = Array(repeating: "a=1", count: 20_000).joined(separator: "&")
        let clock = ContinuousClock()
        let elapsed = clock.measure { _ = redactor.redactQuery(query) }
        #expect(elapsed < .seconds(2))
        #expect(redactor.redactQuery(query)?["a"]?.arrayValue?.count == 20_000)
    }

    @Test func formBody() throws {
        let form = "username=VISIBLEuser&pass%77ord=SNTLf1&password=SNTLf2&password=SNTLf3&remember+me=on"
            + "&user%5Bpassword_confirmation%5D=SNTLf4&comment=hello+Bearer+SNTLf5&Client_Secret=SNTLf6"
        let logged = try bodyValue(Array(form.utf8), type: "application/x-www-form-urlencoded; charset=UTF-8")
        #expect(logged["username"] as? String == "VISIBLEuser")
        #expect(logged["password"] as? [String] == ["[REDACTED]", "[REDACTED]", "[REDACTED]"])
        #expect(logged["remember me"] as? String == "on")
        #expect(logged["user[password_confirmation]"] as? String == "[REDACTED]")
        #expect(logged["comment"] as? String == "hello [REDACTED]")
        #expect(logged["Client_Secret"] as? String == "[REDACTED]")
    }

    static let multipart = [
        "preamble SNTLpre",
        "--XyZ",
        "Content-Disposition: form-data; name=\"username\"",
        "",
        "VISIBLEuser",
        "--XyZ",
        "Content-Disposition: form-data; name=password",
        "",
        "SNTLm1",
        "--XyZ",
        "content-disposition: form-data; name=\"clientSecret\"",
        "",
        "SNTLm2",
        "--XyZ",
        "Content-Disposition: form-data; name=\"avatar\"; filename=\"me VISIBLE.png\"",
        "Content-Type: image/png",
        "",
        "SNTLfile-content\u{0}\u{1}",
        "--XyZ",
        "Content-Disposition: form-data; name=\"note\"",
        "",
        "multi\r\nline Bearer SNTLm3",
        "--XyZ",
        "Content-Disposition: form-data; name=\"pass%77ord\"",
        "",
        "SNTLm4",
        "--XyZ",
        "Content-Disposition: form-data; name=\"meta\"",
        "Content-Type: application/json",
        "",
        "{\"api_key\":\"SNTLm5\",\"ok\":\"VISIBLEjson\"}",
        "--XyZ",
        "Content-Disposition: form-data; name=\"tags\"",
        "",
        "a",
        "--XyZ",
        "Content-Disposition: form-data; name=\"tags\"",
        "",
        "",
        "--XyZ",
        "Content-Disposition: form-data; name=\"blob\"",
        "Content-Type: application/octet-stream",
        "",
        "SNTLbinary",
        "--XyZ",
        "Content-Disposition: form-data; name=\"quoted\\\"name\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
        "",
        "SNTLpdf",
        "--XyZ--",
        "epilogue SNTLepi",
    ].joined(separator: "\r\n")

    @Test(arguments: ["multipart/form-data; boundary=XyZ", "Multipart/Form-Data; charset=utf-8; boundary=\"XyZ\""])
    func multipartBody(contentType: String) throws {
        let logged = try bodyValue(Array(Self.multipart.utf8), type: contentType)
        #expect(logged["username"] as? String == "VISIBLEuser")
        #expect(logged["password"] as? String == "[REDACTED]")
        #expect(logged["clientSecret"] as? String == "[REDACTED]")
        let avatar = try #require(logged["avatar"] as? [String: Any])
        #expect(avatar["filename"] as? String == "me VISIBLE.png")
        #expect(avatar["content_type"] as? String == "image/png")
        #expect(avatar["bytes"] as? Int == 18)
        #expect(logged["note"] as? String == "multi\r\nline [REDACTED]")
        #expect(logged["pass%77ord"] as? String == "[REDACTED]")
        let meta = try #require(logged["meta"] as? [String: Any])
        #expect(meta["api_key"] as? String == "[REDACTED]")
        #expect(meta["ok"] as? String == "VISIBLEjson")
        #expect(logged["tags"] as? [String] == ["a", ""])
        #expect((logged["blob"] as? [String: Any])?["bytes"] as? Int == 10)
        #expect((logged["quoted\"name"] as? [String: Any])?["filename"] as? String == "résumé.pdf")
    }

    @Test func multipartThatIsNotWellFormedIsUnparsed() throws {
        let cut = String(Self.multipart.prefix(300))
        for (body, type) in [(cut, "multipart/form-data; boundary=XyZ"), (Self.multipart, "multipart/form-data"),
                             (Self.multipart, "multipart/form-data; boundary=Other")] {
            let logged = try bodyValue(Array(body.utf8), type: type)
            #expect(logged["unparsed"] as? Bool == true)
            #expect(logged["reason"] as? String == "invalid_multipart")
        }
    }

    static let nestedJSON = """
        {"user":{"profile":{"settings":{"security":{"userPassword":"SNTLj1","API_KEY":"SNTLj2","clientSecret":"SNTLj3",
        "note":"VISIBLEj"}}}},"items":[{"token":"SNTLj4"},[{"deep":[{"private_key":{"pem":"SNTLj5"}}]}]],
        "free":"please use Bearer SNTLj6 now","unrelated":"eyJhbGciOiJub25lIn0.eyJ4IjoiU05UTCJ9.SNTLj7",
        "apiToken":"actas_SNTLj8xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","credentials":{"a":"SNTLj9"},"ssn":123456789,
        "secret_list":["SNTLj10"],"ssnNumber":"SNTLj11","numbers":[1,2.5,-3e2,-0,12345678901234567890],
        "eyJhbGciOiJub25lIn0.eyJ4Ijox.SNTLj12":"key looks like a JWT","esc":"\\u0041\\n\\ud83d\\ude00\\ud800",
        "t":true,"f":false,"n":null,"PASSWORD":{"nested":["SNTLj13"]},"ok":"VISIBLE"}
        """

    @Test func nestedJSONBody() throws {
        for type in ["application/json", "application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON"] {
            let logged = try bodyValue(Array(Self.nestedJSON.utf8), type: type)
            let security = try #require(
                (((logged["user"] as? [String: Any])?["profile"] as? [String: Any])?["settings"] as? [String: Any])?["security"]
                    as? [String: Any])
            #expect(security["userPassword"] as? String == "[REDACTED]")
            #expect(security["API_KEY"] as? String == "[REDACTED]")
            #expect(security["clientSecret"] as? String == "[REDACTED]")
            #expect(security["note"] as? String == "VISIBLEj")
            #expect(logged["free"] as? String == "please use [REDACTED] now")
            #expect(logged["unrelated"] as? String == "[REDACTED]")
            #expect(logged["apiToken"] as? String == "[REDACTED]")
            #expect(logged["credentials"] as? String == "[REDACTED]")
            #expect(logged["ssn"] as? String == "[REDACTED]")
            #expect(logged["secret_list"] as? String == "[REDACTED]")
            #expect(logged["[REDACTED]"] as? String == "key looks like a JWT")
            #expect(logged["esc"] as? String == "A\n😀\u{FFFD}")
            #expect(logged["ok"] as? String == "VISIBLE")
            #expect(logged["n"] is NSNull)
        }
        // Numbers are written as they came.
        let text = line(body: AuditCapturedBody(bytes: Array(Self.nestedJSON.utf8), contentType: "application/json"))
        #expect(text.contains(#""numbers":[1,2.5,-3e2,-0,12345678901234567890]"#))
        #expect(text.contains(#""t":true,"f":false,"n":null"#))
    }

    @Test func topLevelArraysAndScalars() throws {
        let text = line(body: AuditCapturedBody(bytes: Array(#"[{"password":"SNTL"},"ok"]"#.utf8), contentType: "application/json"))
        #expect(!text.contains("SNTL"))
        #expect(text.contains(#""request_body":[{"password":"[REDACTED]"},"ok"]"#))
    }

    @Test(arguments: [
        ("{\"password\":\"SNTL\"", "invalid_json"),
        ("{\"password\":\"SNTL\"} trailing", "invalid_json"),
        ("{'password':'SNTL'}", "invalid_json"),
        ("{\"a\":\"SNTL\u{1}\"}", "invalid_json"),
        ("{\"a\":01}", "invalid_json"),
        ("{\"a\":\"\\x\"}", "invalid_json"),
        ("", "invalid_json"),
        (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "too_deep"),
    ])
    func malformedJSONIsUnparsed(body: String, reason: String) throws {
        let logged = try bodyValue(Array(body.utf8), type: "application/json", total: Int64(max(body.utf8.count, 1)))
        #expect(logged["unparsed"] as? Bool == true)
        #expect(logged["content_type"] as? String == "application/json")
        #expect(logged["reason"] as? String == (body.isEmpty ? "truncated" : reason))
        #expect(logged.count == 4)
    }

    @Test func invalidUTF8BodiesAreUnparsed() throws {
        let json: [UInt8] = Array(#"{"note":"SNTL"#.utf8) + [0xFF, 0xC0, 0x80] + Array(#""}"#.utf8)
        let form: [UInt8] = Array("a=SNTL".utf8) + [0xED, 0xA0, 0x80]
        for (bytes, type) in [(json, "application/json"), (form, "application/x-www-form-urlencoded")] {
            let logged = try bodyValue(bytes, type: type)
            #expect(logged["unparsed"] as? Bool == true)
            #expect(logged["reason"] as? String == "invalid_utf8")
            #expect(logged["bytes"] as? Int == bytes.count)
        }
    }

    @Test func otherTypesAndMissingTypesAreUnparsed() throws {
        for type in ["text/plain", "application/xml", "application/octet-stream", "", "application/jsonx", "text/json"] {
            let logged = try bodyValue(Array("password=SNTL {\"password\":\"SNTL\"}".utf8), type: type)
            #expect(logged["unparsed"] as? Bool == true)
            #expect(logged["reason"] as? String == "unsupported_type")
        }
        let untyped = try bodyValue(Array("SNTL".utf8), type: nil)
        #expect(untyped["content_type"] == nil)
        #expect(untyped["bytes"] as? Int == 4)
        let hostileType = try bodyValue(Array("SNTL".utf8), type: "text/x\r\nBearer SNTLtype")
        #expect(hostileType["content_type"] as? String == "text/x\r\n[REDACTED]")
    }

    @Test func truncatedCapturesAreUnparsed() throws {
        let body = Array(#"{"name":"VISIBLE","password":"SNTL"}"#.utf8)
        let short = try bodyValue(Array(body.prefix(20)), type: "application/json", total: Int64(body.count))
        #expect(short["reason"] as? String == "truncated")
        #expect(short["bytes"] as? Int == body.count)
        // A capture longer than body_capture_bytes counts as truncated too.
        let small = Redactor(redactKeys: Redactor.defaultRedactKeys, redactHeaders: [], bodyCaptureBytes: 16)
        let over = try bodyValue(body, type: "application/json", redactor: small)
        #expect(over["reason"] as? String == "truncated")
        // A form cut short is not parsed either (the last pair could be a cut secret name).
        let form = try bodyValue(Array("a=1&passw".utf8), type: "application/x-www-form-urlencoded", total: 40)
        #expect(form["reason"] as? String == "truncated")
    }

    @Test func gzipBodies() throws {
        let json = Array(#"{"name":"VISIBLE","password":"SNTLgz","n":[1,2]}"#.utf8)
        let logged = try bodyValue(TestGzip.stored(json), type: "application/json", encoding: "gzip")
        #expect(logged["name"] as? String == "VISIBLE")
        #expect(logged["password"] as? String == "[REDACTED]")
        let form = try bodyValue(TestGzip.stored(Array("token=SNTLgz2&x=VISIBLE".utf8)),
                                 type: "application/x-www-form-urlencoded", encoding: " X-GZIP ")
        #expect(form["token"] as? String == "[REDACTED]")
        #expect(form["x"] as? String == "VISIBLE")

        // A truncated stream, trailing garbage and corrupt data are unparsed.
        let whole = TestGzip.stored(json)
        for broken in [Array(whole.prefix(whole.count - 12)), whole + [0x00, 0x01], Array(whole.prefix(10)) + [0xFF, 0xFF, 0xFF]] {
            let result = try bodyValue(broken, type: "application/json", encoding: "gzip")
            #expect(result["unparsed"] as? Bool == true)
            #expect(result["reason"] as? String == "bad_encoding")
            #expect(result["content_encoding"] as? String == "gzip")
        }
        // Unknown or stacked encodings are not attempted.
        for encoding in ["br", "gzip, gzip", "zstd"] {
            let result = try bodyValue(whole, type: "application/json", encoding: encoding)
            #expect(result["reason"] as? String == "unsupported_encoding")
        }
    }

    @Test func gzipBombIsCapped() throws {
        let (bomb, inflated) = TestGzip.bomb(repeats: 40_000)  // ~10 MB from ~65 KB
        #expect(inflated > 10_000_000)
        let redactor = Redactor(redactKeys: Redactor.defaultRedactKeys, redactHeaders: [], bodyCaptureBytes: 128 * 1024,
                                maxDecodedBodyBytes: 256 * 1024)
        let logged = try bodyValue(bomb, type: "application/json", encoding: "gzip", redactor: redactor)
        #expect(logged["unparsed"] as? Bool == true)
        #expect(logged["reason"] as? String == "decoded_too_large")
        #expect(logged["bytes"] as? Int == bomb.count)
        // The same stream under the cap decodes (so the cap, not corruption, refused it).
        let small = TestGzip.bomb(repeats: 100)
        let fine = try bodyValue(small.gzip, type: "application/x-www-form-urlencoded", encoding: "gzip", redactor: redactor)
        #expect(fine.count == 1)  // one name: a run of NULs
    }

    @Test func emptyBodyIsOmitted() {
        let text = line(body: AuditCapturedBody(bytes: [UInt8](), contentType: "application/json"))
        #expect(!text.contains("request_body"))
    }

    @Test func extraFieldsAreRedactedToo() throws {
        let text = encodeLine(AuditRecord(type: .login, user: "u", extra: [
            AuditField("api_token", .string("SNTLx1")),
            AuditField("details", .object([.init("password", .array([.string("SNTLx2")])), .init("note", .string("Bearer SNTLx3"))])),
            AuditField("bad_number", .number("1e9 9")),
        ]))
        #expect(!text.contains("SNTL"), "\(text)")
        #expect(text.contains(#""bad_number":"1e9 9""#))  // not a JSON number: written as a string
        _ = try parseObject(text)
    }

    @Test func secretsInEveryPlaceAtOnce() throws {
        let record = AuditRecord(
            type: .request, requestID: "r", clientIP: "203.0.113.9", method: "POST",
            path: "/reset/eyJhbGciOiJIUzI1NiJ9.eyJ1IjoxfQ.SNTLpathsig", query: "token=SNTLall1",
            user: "jdoe", impersonator: "admin",
            requestHeaders: [AuditHeader("Authorization", "Bearer SNTLall2"), AuditHeader("Cookie", "s=SNTLall3")],
            requestBody: AuditCapturedBody(bytes: Array(Self.nestedJSON.utf8), contentType: "application/json"),
            justification: "user said token actas_SNTLall4aaaaaaaaaaaaaaaaaaaa", detail: "Bearer SNTLall5")
        let text = encodeLine(record)
        #expect(!text.contains("SNTL"), "\(text)")
        let object = try parseObject(text)
        #expect(object["path"] as? String == "/reset/[REDACTED]")
    }
}

/// The byte-wise Cookie path must give exactly what the Character-wise one gives, for every
/// header it takes (printable ASCII and tabs).
@Suite struct CookieRedactionPathsTests {
    static let pieces = [
        ";", "; ", ";;", "=", " ", "\t", "a", "sid", "theme", "secure", "HttpOnly", "Partitioned", "path", "password", "pass",
        "token", "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "Bearer abcdefghijklmnop", "actas_abcdefghijklmnopqrstu", "%70assword",
        "AKIAABCDEFGHIJKLMNOP", "-----BEGIN PRIVATE KEY-----", "x=y", "=v", "VISIBLE",
    ]

    @Test func bothPathsAgreeOnRandomHeaders() {
        var generator = SplitMix64(seed: 20261207)  // replayable
        let lenient = Redactor(redactKeys: Redactor.defaultRedactKeys, redactHeaders: [])
        for _ in 0..<20_000 {
            let header = (0..<Int.random(in: 0...10, using: &generator)).map { _ in Self.pieces.randomElement(using: &generator)! }.joined()
            for (allValues, isSetCookie) in [(false, false), (false, true), (true, false), (true, true)] {
                let fast = lenient.redactPlainCookies(header, allValues: allValues, isSetCookie: isSetCookie)
                let general = lenient.redactCookiesByCharacter(header, allValues: allValues, isSetCookie: isSetCookie)
                #expect(fast == general, "\(header) allValues=\(allValues) setCookie=\(isSetCookie)")
                if fast != general { return }
            }
        }
    }

    @Test func aCombiningMarkAfterTheSeparatorHidesNothing() {
        let redactor = Redactor(redactKeys: Redactor.defaultRedactKeys, redactHeaders: [])
        let logged = redactor.redactHeaderValue(name: "Cookie", value: "a=1;\u{301}password=hunter2; é=v")
        #expect(!logged.contains("hunter2"), "\(logged)")
        #expect(logged == "a=1; \u{301}password=[REDACTED]; é=v")
        #expect(redactor.redactPlainCookies("a=1\r\nb=2", allValues: false, isSetCookie: false) == nil)  // control bytes: the old path
        #expect(redactor.redactPlainCookies("a=1;\tb = 2 ", allValues: false, isSetCookie: false) == "a=1; b= 2 ")
    }
}
