import Crypto
import Foundation
import Testing
@testable import ActAsCrypto

private let base64URLAlphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
private let base32Alphabet = Set("abcdefghijklmnopqrstuvwxyz234567")

@Suite("Secrets, base64url, constant-time compare")
struct SecretsTests {
    @Test func sessionAndCSRFTokens() {
        for token in [Secrets.sessionToken(), Secrets.csrfToken()] {
            #expect(token.count == 43)
            #expect(token.allSatisfy(base64URLAlphabet.contains))
            #expect(Base64URL.decode(token)?.count == 32)
        }
    }

    @Test func apiTokenFormat() {
        let token = Secrets.apiToken()
        #expect(token.hasPrefix("actas_"))
        #expect(Secrets.apiTokenPrefix == "actas_")
        #expect(token.count == 6 + 43)
        let body = token.dropFirst(6)
        #expect(body.allSatisfy(base64URLAlphabet.contains))
        #expect(Base64URL.decode(String(body))?.count == 32)
    }

    @Test func identifiers() {
        let id = Secrets.identifier(prefix: "usr_")
        #expect(id.hasPrefix("usr_"))
        #expect(id.count == 24)
        #expect(id.dropFirst(4).allSatisfy(base32Alphabet.contains))
    }

    @Test func uniquenessOverManyDraws() {
        var sessions = Set<String>(), tokens = Set<String>(), ids = Set<String>()
        for _ in 0..<5_000 {
            sessions.insert(Secrets.sessionToken())
            tokens.insert(Secrets.apiToken())
            ids.insert(Secrets.identifier(prefix: "imp_"))
        }
        #expect(sessions.count == 5_000)
        #expect(tokens.count == 5_000)
        #expect(ids.count == 5_000)
    }

    /// Every symbol of the id alphabet turns up, and roughly evenly (a modulo bias or a stuck
    /// bit would show here: 2,000 ids × 20 characters = 1,250 expected per symbol).
    @Test func identifierAlphabetIsUsedEvenly() {
        var counts: [Character: Int] = [:]
        for _ in 0..<2_000 {
            for character in Secrets.identifier(prefix: "").prefix(20) { counts[character, default: 0] += 1 }
        }
        #expect(Set(counts.keys) == base32Alphabet)
        #expect(counts.values.allSatisfy { (1_000...1_500).contains($0) })
    }

    @Test func randomBytes() {
        #expect(Secrets.randomBytes(0).isEmpty)
        #expect(Secrets.randomBytes(64).count == 64)
        #expect(Secrets.randomBytes(32) != Secrets.randomBytes(32))
    }

    @Test func sha256Hex() {
        #expect(Secrets.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Secrets.hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let token = Secrets.apiToken()
        let viaBuffer = Array(token.utf8).withUnsafeBytes { Secrets.hash($0) }
        #expect(viaBuffer == Secrets.hash(token))
        #expect(Secrets.hash(token).count == 64)
        #expect(Secrets.hash(token) != token)
    }

    @Test func hex() {
        #expect(hexString([0x00, 0xFF, 0x0A, 0xB7]) == "00ff0ab7")
        #expect(hexString([UInt8]()) == "")
        #expect(hexString(Array(0...255).map(UInt8.init)).count == 512)
    }

    @Test func constantTimeEqualsCases() {
        #expect(constantTimeEquals([UInt8](), [UInt8]()))
        #expect(constantTimeEquals([1, 2, 3] as [UInt8], [1, 2, 3] as [UInt8]))
        #expect(!constantTimeEquals([1, 2, 3] as [UInt8], [0, 2, 3] as [UInt8]))
        #expect(!constantTimeEquals([1, 2, 3] as [UInt8], [1, 2, 4] as [UInt8]))
        #expect(!constantTimeEquals([1, 2, 3] as [UInt8], [1, 2] as [UInt8]))
        #expect(!constantTimeEquals([1, 2] as [UInt8], [1, 2, 3] as [UInt8]))
        #expect(!constantTimeEquals([UInt8](), [0] as [UInt8]))
        #expect(constantTimeEquals(Array("token".utf8), Data("token".utf8)))
        #expect(!constantTimeEquals(Array("token".utf8), Array("tokeN".utf8)))
    }

    // MARK: base64url

    @Test func base64URLEncode() {
        #expect(Base64URL.encode([UInt8]()) == "")
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.encode([0xFB, 0xEF, 0xBE]) == "----")
        #expect(Base64URL.encode([0xFF, 0xFF, 0xFF]) == "____")
        #expect(Base64URL.encode(Array("f".utf8)) == "Zg")
        #expect(Base64URL.encode(Array("fo".utf8)) == "Zm8")
        #expect(Base64URL.encode(Array("foo".utf8)) == "Zm9v")
    }

    @Test func base64URLDecode() {
        #expect(Base64URL.decode("") == Data())
        #expect(Base64URL.decode("-_8").map(Array.init) == [0xFB, 0xFF])
        #expect(Base64URL.decode("Zg").map(Array.init) == Array("f".utf8))
        #expect(Base64URL.decode("Zm9v").map(Array.init) == Array("foo".utf8))
    }

    @Test(arguments: ["Zg==", "Zg=", "Zm8=", "=", "==", "A", "Zm9vY", "Zm 9v", "Zm9v\n", " Zm9v", "Zm9v.", "Zm!v", "Zg==Zg", "ü"])
    func base64URLDecodeRefuses(text: String) {
        #expect(Base64URL.decode(text) == nil)
    }

    /// `+` and `/` are base64, not base64url (RFC 4648 §5): a JOSE decoder takes only `-` `_`.
    @Test(arguments: ["+_8", "-/8", "++++", "////"])
    func base64URLDecodeRefusesStandardAlphabet(text: String) {
        #expect(Base64URL.decode(text) == nil)
    }

    @Test func base64URLRoundTrip() {
        for length in 0..<70 {
            let bytes = Secrets.randomBytes(length)
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(text.count == (length * 4 + 2) / 3)
            #expect(Base64URL.decode(text).map(Array.init) == bytes)
        }
    }
}
