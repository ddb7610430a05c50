import ActAsCrypto
import Testing

/// `auth.mtls.username_from` (SPEC §10.3): which name of a verified certificate is the username.
struct ClientCertificateIdentityTests {
    typealias Rule = ClientCertificateIdentity.Rule

    func username(_ rule: Rule, cn: [String] = [], sans: [ClientCertificateIdentity.SubjectAlternativeName] = []) -> Result<String, ClientCertificateIdentity.Problem> {
        ClientCertificateIdentity.username(rule: rule, commonNames: cn, subjectAlternativeNames: sans)
    }

    @Test func eachRuleTakesItsKindOfName() {
        let sans: [ClientCertificateIdentity.SubjectAlternativeName] = [.dns("laptop-7.acme.example"), .email("alice@acme.example")]
        #expect(username(.cn, cn: ["alice"], sans: sans) == .success("alice"))
        #expect(username(.sanEmail, cn: ["bob"], sans: sans) == .success("alice@acme.example"))
        #expect(username(.sanEmailLocal, cn: ["bob"], sans: sans) == .success("alice"))
        #expect(username(.sanDNS, cn: ["bob"], sans: sans) == .success("laptop-7.acme.example"))
    }

    @Test func theFirstNameOfTheKindCountsInCertificateOrder() {
        let sans: [ClientCertificateIdentity.SubjectAlternativeName] = [.email("first@x.example"), .dns("a.example"), .email("second@x.example"), .dns("b.example")]
        #expect(username(.sanEmail, sans: sans) == .success("first@x.example"))
        #expect(username(.sanEmailLocal, sans: sans) == .success("first"))
        #expect(username(.sanDNS, sans: sans) == .success("a.example"))
        #expect(username(.cn, cn: ["one", "two"]) == .success("one"))
    }

    @Test func emailsAndDNSNamesAreLowerCasedCommonNamesAreNot() {
        #expect(username(.sanEmail, sans: [.email("Alice@Example.COM")]) == .success("alice@example.com"))
        #expect(username(.sanEmailLocal, sans: [.email("ALICE@example.com")]) == .success("alice"))
        #expect(username(.sanDNS, sans: [.dns("Host.Example.COM")]) == .success("host.example.com"))
        #expect(username(.cn, cn: ["Carol.Smith"]) == .success("Carol.Smith"))
    }

    @Test func noNameOfTheKindIsMissing() {
        #expect(username(.sanEmail, cn: ["alice"], sans: [.dns("alice.example")]) == .failure(.missing("san_email")))
        #expect(username(.sanEmailLocal, cn: ["alice"]) == .failure(.missing("san_email_local")))
        #expect(username(.sanDNS, sans: [.email("a@b.example")]) == .failure(.missing("san_dns")))
        #expect(username(.cn, sans: [.email("a@b.example")]) == .failure(.missing("cn")))
    }

    @Test func aMailboxWithoutLocalPartHasNone() {
        // rfc822Name may name a whole domain ("example.com") or start with "@".
        #expect(username(.sanEmailLocal, sans: [.email("example.com")]) == .failure(.missing("san_email_local")))
        #expect(username(.sanEmailLocal, sans: [.email("@example.com")]) == .failure(.missing("san_email_local")))
        // The local part is everything before the last "@".
        #expect(username(.sanEmailLocal, sans: [.email("a@b@example.com")]) == .success("a@b"))
    }

    @Test(arguments: ["Alice Smith", "alice,admin", "alice\r\nX-Forwarded-User: root", "", "ålice", "a/b", String(repeating: "a", count: 129)])
    func namesThatAreNoUsernameAreRefusedNotRewritten(name: String) {
        #expect(username(.cn, cn: [name]) == .failure(.invalid(name)))
    }

    @Test func anEmailWithCharactersNoUsernameHasIsRefused() {
        #expect(username(.sanEmail, sans: [.email("al ice@example.com")]) == .failure(.invalid("al ice@example.com")))
    }

    @Test func unparseableDERHasAFingerprintButNoUsername() {
        let identity = ClientCertificateIdentity(der: [0x30, 0x03, 0x02, 0x01, 0x01], rule: .cn)
        #expect(identity.username == .failure(.unparseable))
        // Lower-case hex of SHA-256 over exactly the DER bytes (Python: hashlib.sha256(der).hexdigest()).
        #expect(identity.sha256 == "1b65f68a522c858715f5dd951cd0402dc16691778814bf0759822b7a257421d0")
    }

    @Test func everyRuleHasItsConfigName() {
        #expect(Rule.allCases.map(\.rawValue) == ["cn", "san_email", "san_email_local", "san_dns"])
    }
}
