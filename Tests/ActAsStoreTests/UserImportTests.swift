import ActAsCore
import Foundation
import Testing
@testable import ActAsStore

private func parse(_ text: String, file: String = "users.json") throws -> [UserRecordInput] {
    try UserImport.parse(Data(text.utf8), file: file)
}

private func csv(_ text: String) throws -> [UserRecordInput] {
    try parse(text, file: "users.csv")
}

/// The import's error messages, or a marker when it did not fail.
private func errors(_ text: String, file: String = "users.json") -> [String] {
    do {
        _ = try UserImport.parse(Data(text.utf8), file: file)
        return ["<no error>"]
    } catch let error as ImportError {
        return error.messages
    } catch {
        return ["<unexpected \(error)>"]
    }
}

private func date(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.date(from: text)!
}

@Suite("User import files")
struct UserImportTests {
    // MARK: JSON

    @Test func jsonArrayWithEveryField() throws {
        let records = try parse("""
            [
              {"id": "emp-1", "username": "alice", "email": "alice@example.com", "name": "Alice Ä",
               "role": "manager", "groups": ["sales", "emea"], "org_unit": "acme/emea", "status": "invited",
               "last_login": "2026-11-01T10:15:23.5Z", "password": "s3cret"},
              {"username": "bob", "groups": "a; b ;;c", "last_login": "2026-11-01"},
              {"username": "carol", "email": null, "last_login": "2026-11-01T12:00:00+02:00"}
            ]
            """)
        #expect(records.count == 3)
        let alice = records[0]
        #expect(alice.username == "alice")
        #expect(alice.id == "emp-1")
        #expect(alice.email == "alice@example.com")
        #expect(alice.name == "Alice Ä")
        #expect(alice.role == "manager")
        #expect(alice.groups == ["sales", "emea"])
        #expect(alice.orgUnit == "acme/emea")
        #expect(alice.status == .invited)
        #expect(alice.lastLogin == date("2026-11-01T10:15:23.500Z"))
        #expect(alice.password == "s3cret")
        #expect(alice.origin == "users.json:2: user 1")

        let bob = records[1]
        #expect(bob.groups == ["a", "b", "c"])
        #expect(bob.lastLogin == date("2026-11-01T00:00:00.000Z"))
        #expect(bob.email == nil && bob.role == nil && bob.status == nil && bob.password == nil && bob.id == nil)
        #expect(bob.origin == "users.json:5: user 2")

        let carol = records[2]
        #expect(carol.email == nil)
        #expect(carol.lastLogin == date("2026-11-01T10:00:00.000Z"))
    }

    @Test func leadingWhitespaceAndBOMBeforeTheArray() throws {
        #expect(try parse("  \n\t[{\"username\": \"alice\"}]").map(\.username) == ["alice"])
        #expect(try parse("\u{FEFF}[{\"username\": \"alice\"}]").map(\.username) == ["alice"])
        #expect(try parse("[]").isEmpty)
    }

    @Test func aSingleObjectIsRefused() {
        let found = errors(#"{"username": "alice"}"#)
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("users.json: ") == true)
        #expect(found.first?.contains("array") == true)
    }

    @Test func invalidJSONNamesTheFile() {
        let found = errors(#"[{"username": "alice",}"#)
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("users.json: ") == true)
    }

    @Test func unknownFieldsAndWrongTypesAreReportedPerUser() {
        let found = errors("""
            [
              {"username": "alice", "emial": "typo@example.com"},
              {"username": "bob", "email": 42},
              {"username": "carol", "groups": [1, 2]},
              {"username": "dave", "status": true},
              {"username": "erin", "groups": {"a": 1}},
              {"username": "frank", "password_hash": "$scrypt$..."},
              {"username": 7},
              {"email": "nobody@example.com"},
              {"username": ""},
              "just a string",
              {"username": "gina", "status": "on holiday"},
              {"username": "hal", "last_login": "yesterday"},
              {"username": "ivy", "last_login": "2026-13-01"},
              {"username": "jo", "role": ["owner"]}
            ]
            """)
        func has(_ user: Int, _ fragment: String, _ sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(found.contains { $0.hasPrefix("users.json:\(user + 1): user \(user): ") && $0.contains(fragment) }, "user \(user) \(fragment): \(found)", sourceLocation: sourceLocation)
        }
        has(1, "emial")
        has(2, "email")
        has(3, "groups")
        has(4, "status")
        has(5, "groups")
        has(6, "password_hash")
        has(7, "username")
        has(8, "username")
        has(9, "username")
        has(10, "object")
        has(11, "on holiday")
        has(12, "yesterday")
        has(13, "2026-13-01")
        has(14, "role")
    }

    @Test(arguments: ["2026-02-30", "2026-02-29", "2026-00-10", "2026-1-1", "26-11-01", "2026-11-01T25:00:00Z",
                      "2026-11-01T10:00:00", "2026-11-01 10:00:00", "2026-11-01X", " 2026-11-01", "2026-11-01T10:00:60Z",
                      "2026-02-30T10:00:00Z", "2026-04-31T00:00:00+02:00"])
    func impossibleOrSloppyDatesAreRefused(text: String) {
        #expect(UserImport.parseDate(text) == nil)
    }

    @Test(arguments: [
        ("2026-11-01", "2026-11-01T00:00:00.000Z"),
        ("2028-02-29", "2028-02-29T00:00:00.000Z"),
        ("2026-11-01T10:15:23Z", "2026-11-01T10:15:23.000Z"),
        ("2026-11-01T10:15:23.123Z", "2026-11-01T10:15:23.123Z"),
        ("2026-11-01T10:15:23-05:00", "2026-11-01T15:15:23.000Z"),
    ])
    func datesThatParse(text: String, expected: String) {
        #expect(UserImport.parseDate(text) == date(expected))
    }

    // MARK: CSV

    @Test func csvBasics() throws {
        let records = try csv("""
            username,email,name,role,groups,org_unit,status,last_login,id,password
            alice,alice@example.com,Alice,manager,sales;emea,acme/emea,invited,2026-11-01,emp-1,pw1
            bob,,,,,,,,,

            """)
        #expect(records.count == 2)
        #expect(records[0].username == "alice")
        #expect(records[0].groups == ["sales", "emea"])
        #expect(records[0].status == .invited)
        #expect(records[0].lastLogin == date("2026-11-01T00:00:00.000Z"))
        #expect(records[0].id == "emp-1")
        #expect(records[0].password == "pw1")
        #expect(records[0].origin == "users.csv:2")
        // Empty cells leave the field as it is.
        #expect(records[1] == UserRecordInput(username: "bob", origin: "users.csv:3"))
    }

    @Test func headerNamesAreCaseAndSpaceInsensitiveAndOrderFree() throws {
        let records = try csv(" Role , USERNAME \nmanager,alice\n")
        #expect(records.first?.username == "alice")
        #expect(records.first?.role == "manager")
    }

    @Test func quotedFieldsWithCommasNewlinesAndDoubledQuotes() throws {
        let records = try csv("""
            username,name,groups
            alice,"Example, Alice","a;b"
            bob,"Bob ""the builder""
            second line",
            "carol","",""

            """)
        #expect(records.count == 3)
        #expect(records[0].name == "Example, Alice")
        #expect(records[1].name == "Bob \"the builder\"\nsecond line")
        #expect(records[1].groups == nil)
        #expect(records[1].origin == "users.csv:3")
        #expect(records[2].username == "carol")
        #expect(records[2].origin == "users.csv:5")
        #expect(records[2].name == nil)
    }

    @Test func crlfBOMAndBlankLines() throws {
        let records = try csv("\u{FEFF}username,email\r\n\r\nalice,a@example.com\r\n\r\nbob,b@example.com\r\n")
        #expect(records.map(\.username) == ["alice", "bob"])
        #expect(records.map(\.email) == ["a@example.com", "b@example.com"])
        #expect(records.map(\.origin) == ["users.csv:3", "users.csv:5"])
        #expect(!records[0].email!.contains("\r"))
    }

    @Test func noTrailingNewlineAndAQuotedLastField() throws {
        #expect(try csv("username,name\nalice,\"A\"").first?.name == "A")
        #expect(try csv("username\nalice").map(\.username) == ["alice"])
    }

    @Test func headerOnlyIsNoUsers() throws {
        #expect(try csv("username,email\n").isEmpty)
    }

    @Test func headerProblems() {
        #expect(errors("email,name\na@example.com,A\n", file: "users.csv").contains { $0.hasPrefix("users.csv:1: ") && $0.contains("username") })
        #expect(errors("username,emial\nalice,x\n", file: "users.csv").contains { $0.hasPrefix("users.csv:1: ") && $0.contains("emial") })
        #expect(errors("username,email,Email\nalice,x,y\n", file: "users.csv").contains { $0.hasPrefix("users.csv:1: ") })
        #expect(errors("", file: "users.csv").count == 1)
        #expect(errors("\u{FEFF}", file: "users.csv").count == 1)
    }

    /// The line number of a short row after a multi-line quoted field is the row's first line.
    @Test func wrongFieldCountNamesTheRightLine() {
        let found = errors("""
            username,name
            alice,"line one
            line two
            line three"
            bob
            carol,C,extra
            dave,D
            """, file: "users.csv")
        #expect(found.contains { $0.hasPrefix("users.csv:5: ") && $0.contains("expected 2 fields, found 1") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("users.csv:6: ") && $0.contains("found 3") }, "\(found)")
        #expect(found.count == 2)
    }

    @Test func wrongFieldCountAfterCRLFMultiLineField() {
        let found = errors("username,name\r\nalice,\"a\r\nb\"\r\nbob\r\n", file: "users.csv")
        #expect(found == ["users.csv:4: expected 2 fields, found 1"])
    }

    @Test func unterminatedQuoteNamesWhereItOpened() {
        let found = errors("username,name\nalice,A\nbob,\"never closed\ncarol,C\n", file: "users.csv")
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("users.csv:3: ") == true, "\(found)")
    }

    @Test func strayQuotes() {
        let inside = errors("username,name\nalice,Al\"ice\n", file: "users.csv")
        #expect(inside.first?.hasPrefix("users.csv:2: ") == true, "\(inside)")
        let after = errors("username,name\nalice,\"Alice\"x\n", file: "users.csv")
        #expect(after.first?.hasPrefix("users.csv:2: ") == true, "\(after)")
    }

    @Test func badValuesNameTheirLine() {
        let found = errors("username,status,last_login\nalice,active,2026-11-01\nbob,paused,\ncarol,,tomorrow\n", file: "users.csv")
        #expect(found.contains { $0.hasPrefix("users.csv:3: ") && $0.contains("paused") })
        #expect(found.contains { $0.hasPrefix("users.csv:4: ") && $0.contains("tomorrow") })
        #expect(found.count == 2)
    }

    /// A Latin-1 export (common from spreadsheets) must not be imported with its names turned
    /// into U+FFFD: refuse a file that is not UTF-8.
    @Test func aFileThatIsNotUTF8IsRefused() {
        var data = Data("username,name\njose,Jos".utf8)
        data.append(0xE9)  // é in Latin-1
        data.append(contentsOf: Array("\n".utf8))
        #expect(throws: ImportError.self) { _ = try UserImport.parse(data, file: "users.csv") }
    }

    @Test func csvReaderRows() throws {
        let rows = try CSVReader.rows("a,b\n\"c\nd\",e\r\nf,\"\"\"\"\n")
        #expect(rows.map(\.line) == [1, 2, 4])
        #expect(rows.map(\.fields) == [["a", "b"], ["c\nd", "e"], ["f", "\""]])
        #expect(try CSVReader.rows("").isEmpty)
        #expect(try CSVReader.rows(",").map(\.fields) == [["", ""]])
        #expect(try CSVReader.rows("\"\"").map(\.fields) == [[""]])
    }
}

/// Issue 21 items 9 and 10: dot segments in org units, and characters that trick terminals.
@Suite("Directory field rules")
struct DirectoryFieldRuleTests {
    @Test(arguments: ["acme/emea/../hq", "acme/emea/./x", "acme/emea/..", "./acme", "..", ".", "acme/emea/sales/.", "a//b", "/a", "a/"])
    func dotAndEmptySegmentsAreRefused(unit: String) {
        #expect(UserValidation.checkOrgUnit(unit) != nil, "\(unit)")
        // Rows already stored with such a unit are inside no scope, and scope nothing.
        #expect(!OrgUnit.covers("acme/emea", unit))
        #expect(!OrgUnit.covers("acme", unit))
        #expect(!OrgUnit.covers(unit, "acme/emea/sales"))
    }

    @Test func dotsInsideSegmentsAreFine() {
        for unit in ["acme/emea/v1.2", "acme/.hidden", "acme/...", "acme/..x/y", "a.b"] {
            #expect(UserValidation.checkOrgUnit(unit) == nil, "\(unit)")
        }
        #expect(OrgUnit.covers("acme", "acme/...") && OrgUnit.covers("acme/..x", "acme/..x/y"))
    }

    static let tricks: [Unicode.Scalar] = [
        "\u{0}", "\u{1B}", "\u{7F}", "\u{85}", "\u{9B}", "\u{2028}", "\u{2029}", "\u{061C}", "\u{200E}", "\u{200F}",
        "\u{202A}", "\u{202B}", "\u{202C}", "\u{202D}", "\u{202E}", "\u{2066}", "\u{2067}", "\u{2068}", "\u{2069}",
    ]

    @Test func controlSeparatorAndBidiCharactersAreRefusedInEveryField() {
        for scalar in Self.tricks {
            let value = "a" + String(Character(scalar)) + "b"
            var user = User(id: "usr_1", username: "u")
            user.name = value
            user.email = value
            user.groups = [value]
            user.orgUnit = "acme/" + value
            let problems = UserValidation.problems(user, knownRoles: ["employee"])
            for field in ["name", "email", "group", "org_unit"] {
                #expect(problems.contains { $0.hasPrefix(field) && $0.contains(String(format: "U+%04X", scalar.value)) },
                        "\(field) U+\(String(scalar.value, radix: 16)): \(problems)")
            }
            // The message names the character, never echoes it raw.
            #expect(problems.allSatisfy(TerminalText.isSafe), "\(problems)")
            #expect(UserValidation.checkUsername(value) != nil)
        }
        // Zero-width (non-)joiners stay allowed: names in several scripts need them.
        #expect(UserValidation.checkHeaderSafe("می\u{200C}خواهم", field: "name") == nil)
    }

    @Test func terminalTextEscapesEveryTrick() {
        for scalar in Self.tricks {
            let escaped = TerminalText.safe("x" + String(Character(scalar)) + "y")
            #expect(TerminalText.isSafe(escaped) && escaped.hasPrefix("x\\u") && escaped.hasSuffix("y"), "\(escaped)")
        }
        #expect(TerminalText.safe("Ada Ä 😀") == "Ada Ä 😀")
        #expect(TerminalText.safeLines("a\u{202E}\nb\u{1B}") == "a\\u202e\nb\\u001b")
    }

    @Test func importErrorsNameTheLine() {
        let json = Data("[\n  {\"username\": \"ok\"},\n\n  {\"username\": \"bad\",\n   \"org_unit\": \"a/../b\"}, \"x\" , [1, {\"a\": \"]\\\"\"}]\n]".utf8)
        #expect(UserImport.elementLines(json) == [2, 4, 5, 5])
        #expect(UserImport.elementLines(Data("[]".utf8)).isEmpty)
    }
}
