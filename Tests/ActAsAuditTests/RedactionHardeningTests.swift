import Foundation
import Testing

@testable import ActAsAudit

/// Issue 21 item 8: secrets the name rule alone missed. As in RedactionTests, every secret
/// contains "SNTL" and no encoded line may contain it; harmless values contain "VISIBLE".
@Suite struct RedactionHardeningTests {
    let redactor = defaultRedactor

    func body(_ text: String, type: String) throws -> [String: Any] {
        let line = encodeLine(AuditRecord(type: .request, path: "/x", requestBody: AuditCapturedBody(bytes: Array(text.utf8), contentType: type)))
        #expect(!line.contains("SNTL"), "\(line)")
        return try #require(try parseObject(line)["request_body"] as? [String: Any])
    }

    func query(_ text: String) throws -> [String: Any] {
        let line = encodeLine(AuditRecord(type: .request, path: "/x", query: text))
        #expect(!line.contains("SNTL"), "\(line)")
        return try #require(try parseObject(line)["query"] as? [String: Any])
    }

    // MARK: (a) JSON inside text

    @Test func jsonInsideJSONStringsIsRedactedAsJSON() throws {
        let variables = #"{"username":"VISIBLEu","password":"SNTLa1","input":{"apiKey":"SNTLa2","n":[1,2.50]}}"#
        let twice = try String(decoding: JSONSerialization.data(withJSONObject: [#"{"token":"SNTLa3"}"#], options: []), as: UTF8.self)
        let document: [String: Any] = [
            "query": "mutation { login }", "variables": variables, "list": #"  [{"secret":"SNTLa4"},"VISIBLEl"]"#,
            "twice": String(twice.dropFirst().dropLast()),  // a JSON string literal holding JSON
            "deeper": #"{"inner":"{\"credential\":\"SNTLa5\",\"ok\":\"VISIBLEd\"}"}"#,
            "repr": "{'password': 'SNTLa6'}", "cut": #"{"token":"SNTLa7""#, "plain": "[1] VISIBLE note",
            "quoted": "\"VISIBLE\" he said",
        ]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]), as: UTF8.self)
        let logged = try body(text, type: "application/json")
        #expect(logged["variables"] as? String == #"{"username":"VISIBLEu","password":"[REDACTED]","input":{"apiKey":"[REDACTED]","n":[1,2.50]}}"#)
        #expect(logged["list"] as? String == #"[{"secret":"[REDACTED]"},"VISIBLEl"]"#)
        #expect(logged["twice"] as? String == #""{\"token\":\"[REDACTED]\"}""#)
        #expect(logged["deeper"] as? String == #"{"inner":"{\"credential\":\"[REDACTED]\",\"ok\":\"VISIBLEd\"}"}"#)
        #expect(logged["repr"] as? String == "[REDACTED]")
        #expect(logged["cut"] as? String == "[REDACTED]")
        #expect(logged["plain"] as? String == "[1] VISIBLE note")
        #expect(logged["quoted"] as? String == "\"VISIBLE\" he said")
        #expect(logged["query"] as? String == "mutation { login }")
    }

    @Test func jsonInFormQueryMultipartAndHeaders() throws {
        let form = try body("payload=%7B%22user%22%3A%22VISIBLEf%22%2C%22token%22%3A%22SNTLb1%22%7D&x=1",
                            type: "application/x-www-form-urlencoded")
        #expect(form["payload"] as? String == #"{"user":"VISIBLEf","token":"[REDACTED]"}"#)
        let get = try query(#"variables={"password":"SNTLb2"}&q=VISIBLE"#)
        #expect(get["variables"] as? String == #"{"password":"[REDACTED]"}"#)
        let multipart = ["--B", "Content-Disposition: form-data; name=\"operations\"", "", #"{"variables":{"token":"SNTLb3"}}"#, "--B--"]
            .joined(separator: "\r\n")
        let parts = try body(multipart, type: "multipart/form-data; boundary=B")
        #expect(parts["operations"] as? String == #"{"variables":{"token":"[REDACTED]"}}"#)
        let line = encodeLine(AuditRecord(type: .request, path: "/x", requestHeaders: [AuditHeader("X-Meta", #"{"password":"SNTLb4","v":"VISIBLE"}"#)]))
        #expect(!line.contains("SNTL"))
        #expect(line.contains("VISIBLE"))
    }

    @Test func nestingInStringsSharesTheDepthLimit() throws {
        // 60 objects deep, a string holding 10 more: past the limit of 64, the string is judged
        // by its redact keys alone (and the body itself still parses).
        let inner = String(repeating: #"{"b":"#, count: 9) + #"{"password":"SNTLc1"}"# + String(repeating: "}", count: 9)
        let innerLiteral = String(decoding: try JSONSerialization.data(withJSONObject: [inner], options: []), as: UTF8.self)
            .dropFirst().dropLast()
        let text = String(repeating: #"{"a":"#, count: 60) + innerLiteral + String(repeating: "}", count: 60)
        var logged: Any = try body(text, type: "application/json")
        for _ in 0..<59 { logged = try #require((logged as? [String: Any])?["a"]) }
        #expect((logged as? [String: Any])?["a"] as? String == "[REDACTED]")
        // Shallower, the same string is parsed and only the secret goes.
        let shallow = try body(#"{"a":"# + innerLiteral + "}", type: "application/json")
        #expect((shallow["a"] as? String)?.hasSuffix(#"{"b":{"password":"[REDACTED]"}}}}}}}}}}"#) == true)
    }

    // MARK: (b) RFC 2231 / 8187 multipart names

    @Test func extendedMultipartNames() throws {
        let dispositions = [
            ("name*=UTF-8''password", "password"), ("name*=utf-8'en'pass%77ord", "password"),
            ("name=\"visible\"; name*=UTF-8''api%5Fkey", "api_key"), ("name*0=pass; name*1=word", "password"),
            ("name*0*=UTF-8''sec; name*1*=r%65t", "secret"), ("NAME*=UTF-8''Token", "Token"),
            ("name=\"ok\"; name=\"password\"", "ok"), ("name=\"%70assword\"", "%70assword"),
        ]
        for (disposition, key) in dispositions {
            let text = ["--B", "Content-Disposition: form-data; \(disposition)", "", "SNTLd", "--B--"].joined(separator: "\r\n")
            let logged = try body(text, type: "multipart/form-data; boundary=B")
            #expect(logged[key] as? String == "[REDACTED]", "\(disposition) → \(logged)")
        }
        let visible = ["--B", "Content-Disposition: form-data; name*=UTF-8''r%C3%A9sum%C3%A9", "", "VISIBLE", "--B--"].joined(separator: "\r\n")
        #expect(try body(visible, type: "multipart/form-data; boundary=B")["résumé"] as? String == "VISIBLE")
    }

    // MARK: (c) Key/value pairs

    @Test func keyValuePairArrays() throws {
        let document = #"""
            {"postman":[{"key":"password","value":"SNTLe1","type":"text"},{"key":"host","value":"VISIBLEhost"}],
             "k8s":[{"name":"DB_PASSWORD","value":"SNTLe2"},{"name":"LOG_LEVEL","value":"VISIBLElevel"}],
             "aws":{"Tags":[{"Key":"ApiToken","Value":"SNTLe3"}],"Parameters":[{"ParameterKey":"DBSecret","ParameterValue":"SNTLe4"}]},
             "ssm":{"Name":"/prod/db/password","Value":"SNTLe5","Type":"VISIBLEtype"},
             "sf":{"attributes":{"type":"Setting__c"},"Name":"api_key","Value__c":"SNTLe6"},
             "kv":[{"k":"token","v":"SNTLe7"}],"nested":{"key":"private_key","value":{"pem":"SNTLe8"}},
             "field":{"fieldName":"ssn","fieldValue":"SNTLe9"},"alone":{"name":"password"}}
            """#
        let logged = try body(document, type: "application/json")
        let postman = try #require(logged["postman"] as? [[String: Any]])
        #expect(postman[0]["type"] as? String == "text")
        #expect(postman[1]["value"] as? String == "VISIBLEhost")
        #expect((logged["k8s"] as? [[String: Any]])?[1]["value"] as? String == "VISIBLElevel")
        #expect((logged["ssm"] as? [String: Any])?["Type"] as? String == "VISIBLEtype")
        #expect((logged["alone"] as? [String: Any])?["name"] as? String == "password")
    }

    @Test func keyValuePairsInFlatFields() throws {
        let form = try body(
            "Action=VISIBLEaction&Tags.member.1.Key=secret&Tags.member.1.Value=SNTLf1&Tags.member.2.Key=env&Tags.member.2.Value=VISIBLEprod"
                + "&fields%5B0%5D%5Bname%5D=password&fields%5B0%5D%5Bvalue%5D=SNTLf2&key=api_key&value=SNTLf3",
            type: "application/x-www-form-urlencoded")
        #expect(form["Tags.member.2.Value"] as? String == "VISIBLEprod")
        #expect(form["Action"] as? String == "VISIBLEaction")
        let get = try query("name=token&value=SNTLf4&page=2")
        #expect(get["page"] as? String == "2")
        let multipart = ["--B", "Content-Disposition: form-data; name=\"var[name]\"", "", "password", "--B",
                         "Content-Disposition: form-data; name=\"var[value]\"", "", "SNTLf5", "--B--"].joined(separator: "\r\n")
        _ = try body(multipart, type: "multipart/form-data; boundary=B")
        #expect(Redactor.splitFieldName("fields[0][name]") == ("fields[0]", "name"))
        #expect(Redactor.splitFieldName("Tags.member.1.Key") == ("Tags.member.1", "Key"))
        #expect(Redactor.splitFieldName("key") == ("", "key"))
    }

    // MARK: (d) Token formats

    @Test func wellKnownTokenFormats() {
        let cases: [(String, String)] = [
            ("use ghp_SNTL56789012345678901234567890123456 now", "use [REDACTED] now"),
            ("gho_SNTL5678901234567890", "[REDACTED]"), ("ghu_SNTL5678901234567890", "[REDACTED]"),
            ("x=ghs_SNTL5678901234567890&y", "x=[REDACTED]&y"), ("ghr_SNTL5678901234567890", "[REDACTED]"),
            ("github_pat_11SNTL0123456789_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED]"),
            ("AKIASNTL567890123456", "[REDACTED]"), ("key:ASIASNTL567890123456.", "key:[REDACTED]."),
            ("xoxb-1234-SNTLabcdef", "[REDACTED]"), ("xoxp-SNTL-5678", "[REDACTED]"), ("xoxa-2-SNTLabc", "[REDACTED]"),
            ("xoxr-SNTLabcdef", "[REDACTED]"), ("xoxs-SNTLabcdef", "[REDACTED]"),
            ("sk_live_SNTL5678abcd", "[REDACTED]"), ("sk_test_SNTL5678abcd", "[REDACTED]"), ("(rk_live_SNTL5678abcd)", "([REDACTED])"),
            ("a -----BEGIN RSA PRIVATE KEY-----\nSNTL1\nSNTL2==\n-----END RSA PRIVATE KEY----- b", "a [REDACTED] b"),
            ("-----BEGIN PRIVATE KEY----- SNTL1 -----END PRIVATE KEY-----", "[REDACTED]"),
            ("-----begin openssh private key-----\nSNTLcut", "[REDACTED]"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----SNTL", "[REDACTED]"),
            // Look-alikes stay.
            ("-----BEGIN CERTIFICATE-----\nVISIBLE\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nVISIBLE\n-----END CERTIFICATE-----"),
            ("ghp_short", "ghp_short"), ("AKIA lower", "AKIA lower"), ("AKIAshort123", "AKIAshort123"), ("xoxb-", "xoxb-"),
            ("sk_live_", "sk_live_"), ("the Ghp_ thing", "the Ghp_ thing"), ("--------", "--------"), ("A", "A"),
        ]
        for (input, expected) in cases {
            #expect(redactor.scrubTokens(input) == expected, "\(input)")
        }
    }

    @Test func tokenFormatsEverywhere() throws {
        let aws = "AKIASNTL567890123456"
        let record = AuditRecord(
            type: .request, method: "POST", path: "/x/\(aws)", query: "v=\(aws)&\(aws)=1",
            requestHeaders: [AuditHeader("X-Note", "k=\(aws)")],
            requestBody: AuditCapturedBody(bytes: Array(#"{"note":"\#(aws)","list":["xoxb-1-SNTLabcdefgh"]}"#.utf8), contentType: "application/json"),
            detail: "sk_live_SNTL5678abcd")
        let line = encodeLine(record)
        #expect(!line.contains("SNTL"), "\(line)")
    }

    // MARK: (e) Nameless fields

    @Test func namelessFieldsAreRedactedButStayVisible() throws {
        #expect(redactor.isSensitiveName(""))
        #expect(redactor.isSensitiveName(" "))
        #expect(redactor.isSensitiveName("[]"))
        #expect(redactor.isSensitiveName("\u{200B}"))
        #expect(!redactor.isSensitiveName("名前"))
        #expect(!redactor.isSensitiveName("a"))
        let form = try body("=SNTLg1&%20=SNTLg2&x=VISIBLE", type: "application/x-www-form-urlencoded")
        #expect(form[""] as? String == "[REDACTED]")
        #expect(form[" "] as? String == "[REDACTED]")
        #expect(form["x"] as? String == "VISIBLE")
        #expect(try query("=SNTLg3")[""] as? String == "[REDACTED]")
        #expect(try body(#"{"":"SNTLg4","ok":"VISIBLE"}"#, type: "application/json")[""] as? String == "[REDACTED]")
        let multipart = ["--B", "Content-Disposition: form-data; name=\"\"", "", "SNTLg5", "--B",
                         "Content-Type: text/plain", "", "SNTLg6", "--B",
                         "Content-Disposition: form-data; name*=UTF-8''", "", "SNTLg7", "--B--"].joined(separator: "\r\n")
        #expect(try body(multipart, type: "multipart/form-data; boundary=B")[""] as? [String] == ["[REDACTED]", "[REDACTED]", "[REDACTED]"])
    }

    /// What was redacted before stays redacted once, and harmless text is not rewritten.
    @Test func noDoubleRedactionOrRewriting() throws {
        let logged = try body(#"{"password":"SNTLh1","note":"[REDACTED] already","n":"VISIBLE-text_with.parts A"}"#, type: "application/json")
        #expect(logged["password"] as? String == "[REDACTED]")
        #expect(logged["note"] as? String == "[REDACTED] already")
        #expect(logged["n"] as? String == "VISIBLE-text_with.parts A")
        #expect(redactor.redactText("no json here") == "no json here")
    }
}
