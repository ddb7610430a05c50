import Testing
@testable import ActAsCore

@Suite struct ReadOnlyRulesTests {
    @Test(arguments: [
        ("GET", true), ("HEAD", true), ("OPTIONS", true), ("POST", false), ("PUT", false), ("PATCH", false),
        ("DELETE", false), ("TRACE", false), ("CONNECT", false), ("PROPFIND", false), ("get", false), ("", false),
    ])
    func methods(method: String, allowed: Bool) {
        let refusal = ReadOnlyRules.refusal(method: method, headers: [(String, String)](), isUpgrade: false)
        #expect(refusal == (allowed ? nil : .readOnly))
    }

    @Test(arguments: [
        ("X-HTTP-Method-Override", "DELETE", false),
        ("x-http-method-override", "delete", false),
        ("X_HTTP_METHOD_OVERRIDE", "PUT", false),
        ("X-HTTP-Method", "PATCH", false),
        ("x-method-override", "post", false),
        ("X-Method-Override", "GET, DELETE", false),
        ("X-Method-Override", "DELETE,GET", false),
        ("X-HTTP-Method-Override", "TRACE", false),
        ("X-HTTP-Method-Override", "\"DELETE\"", false),
        ("X-HTTP-Method-Override", "GET", true),
        ("X-HTTP-Method-Override", "get", true),
        ("X-HTTP-Method-Override", " Head ,\toptions ", true),
        ("X-HTTP-Method-Override", "", true),
        ("X-HTTP-Method-Override", " , ", true),
        ("X-HTTP-Method-Overrides", "DELETE", true),
        ("X-HTTP-Methods", "DELETE", true),
        ("X-Forwarded-Method", "DELETE", true),
        ("Method", "DELETE", true),
    ])
    func overrideHeaders(name: String, value: String, allowed: Bool) {
        let headers = [("Accept", "text/html"), (name, value)]
        #expect(ReadOnlyRules.refusal(method: "GET", headers: headers, isUpgrade: false) == (allowed ? nil : .readOnly))
    }

    @Test func upgradesAreRefused() {
        #expect(ReadOnlyRules.refusal(method: "GET", headers: [("Upgrade", "websocket")], isUpgrade: true) == .readOnly)
    }

    @Test func refusalIsTheContractCode() {
        #expect(RequestRefusal.readOnly.code == "read_only")
        #expect(RequestRefusal.readOnly.httpStatus == 403)
        #expect(RequestRefusal.hiddenPath.code == "hidden_path")
        #expect(RequestRefusal.hiddenPath.httpStatus == 403)
        #expect(RequestRefusal.badPathEncoding.code == "bad_path_encoding")
        #expect(RequestRefusal.badPathEncoding.httpStatus == 400)
    }
}
