import Foundation
import Testing
@testable import ActAsCrypto

/// Cheap parameters: debug-build scrypt at the standard cost is ~0.4 s per hash.
private let fast = PasswordHasher(logN: 10, blockSize: 8, parallelism: 1)

private let goodSalt = "c2FsdHNhbHRzYWx0c2FsdA"  // 16 bytes
private let goodHash = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"  // 32 bytes

@Suite("Password hashes")
struct PasswordHasherTests {
    @Test func roundTripAndWrongPassword() throws {
        let stored = try fast.hash("correct horse battery staple")
        #expect(fast.verify("correct horse battery staple", against: stored))
        #expect(!fast.verify("correct horse battery stapl", against: stored))
        #expect(!fast.verify("Correct horse battery staple", against: stored))
        #expect(!fast.verify("", against: stored))
    }

    @Test func phcFormatWithUnpaddedBase64() throws {
        let stored = try fast.hash("pw")
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
        #expect(parts.count == 5)
        #expect(parts[0] == "")
        #expect(parts[1] == "scrypt")
        #expect(parts[2] == "ln=10,r=8,p=1")
        #expect(parts[3].count == 22)  // 16-byte salt
        #expect(parts[4].count == 43)  // 32-byte key
        #expect(!parts[3].contains("=") && !parts[4].contains("="))
        #expect(PasswordHasher.isWellFormed(stored))
    }

    @Test func saltsDiffer() throws {
        let a = try fast.hash("same"), b = try fast.hash("same")
        #expect(a != b)
        #expect(fast.verify("same", against: a) && fast.verify("same", against: b))
    }

    @Test func parametersComeFromTheStoredHash() throws {
        let stored = try fast.hash("pw")
        let other = PasswordHasher(logN: 11, blockSize: 4, parallelism: 2)
        #expect(other.verify("pw", against: stored))
    }

    @Test func passwordLengthBounds() throws {
        #expect(throws: PasswordHasher.HashError.self) { try fast.hash("") }
        #expect(throws: PasswordHasher.HashError.self) { try fast.hash(String(repeating: "a", count: 1025)) }
        // 1024 bytes is allowed, counted in UTF-8 bytes not characters.
        let max = String(repeating: "a", count: 1024)
        let stored = try fast.hash(max)
        #expect(fast.verify(max, against: stored))
        #expect(throws: PasswordHasher.HashError.self) { try fast.hash(String(repeating: "é", count: 513)) }
        #expect(!fast.verify(max + "a", against: stored))
    }

    @Test func unicodePasswords() throws {
        let stored = try fast.hash("pässwörd 🔑")
        #expect(fast.verify("pässwörd 🔑", against: stored))
        #expect(!fast.verify("password 🔑", against: stored))
    }

    @Test(arguments: [
        "",
        "$",
        "$scrypt$",
        "$scrypt$ln=10,r=8,p=1$\(goodSalt)",
        "$scrypt$ln=10,r=8,p=1$\(goodSalt)$\(goodHash)$",
        "scrypt$ln=10,r=8,p=1$\(goodSalt)$\(goodHash)",
        "x$scrypt$ln=10,r=8,p=1$\(goodSalt)$\(goodHash)",
        "$argon2id$ln=10,r=8,p=1$\(goodSalt)$\(goodHash)",
        "$SCRYPT$ln=10,r=8,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=64,r=8,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=63,r=8,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=-1,r=8,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=0,r=8,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=99999999999999999999999,r=8,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=abc,r=8,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=10,r=0,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=10,r=8,p=0$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=10,r=8,p=100000$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=10,r=8$\(goodSalt)$\(goodHash)",
        "$scrypt$r=8,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=10,r=8,p=1$!!!!$\(goodHash)",
        "$scrypt$ln=10,r=8,p=1$\(goodSalt)$!!!!",
        "$scrypt$ln=10,r=8,p=1$\(goodSalt)$",
        "$scrypt$ln=10,r=8,p=1$$\(goodHash)",
        "$scrypt$ln=10,r=8,p=1$c2FsdA$\(goodHash)",  // 4-byte salt
        "$scrypt$ln=10,r=8,p=1$\(goodSalt)$aGFzaA",  // 4-byte hash
        "$scrypt$ln=10,r=8,p=1$A$\(goodHash)",  // impossible base64 length
        "$scrypt$ln=10;r=8;p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=10,r=8,p=1$\(goodSalt) $\(goodHash)",
        String(repeating: "$", count: 10_000),
        "$scrypt$" + String(repeating: "x=1,", count: 10_000) + "ln=10,r=8,p=1,q$\(goodSalt)$\(goodHash)",
    ])
    func malformedHashesAreFalseNotACrash(stored: String) {
        #expect(!fast.verify("password", against: stored))
        #expect(!PasswordHasher.isWellFormed(stored))
    }

    @Test func aWellFormedForeignHashIsCheckedNotTrusted() {
        let stored = "$scrypt$ln=10,r=8,p=1$\(goodSalt)$\(goodHash)"
        #expect(PasswordHasher.isWellFormed(stored))
        #expect(!fast.verify("password", against: stored))
    }

    /// The parse bounds claim to keep a hostile hash (an edited database row, a restored
    /// backup) from asking for gigabytes. ln=20, r=32 is 128·2^20·32 = 4 GiB of scrypt memory
    /// per sign-in attempt; ln=20, r=8, p=16 is 1 GiB and 16× the CPU. Neither should be
    /// accepted (only `isWellFormed` is called: verifying would really allocate it).
    @Test(arguments: [
        "$scrypt$ln=20,r=32,p=1$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=20,r=8,p=16$\(goodSalt)$\(goodHash)",
        "$scrypt$ln=18,r=32,p=16$\(goodSalt)$\(goodHash)",
    ])
    func hostileCostParametersAreRefused(stored: String) {
        #expect(!PasswordHasher.isWellFormed(stored))
    }

    @Test func standardParametersAreAccepted() {
        #expect(PasswordHasher.isWellFormed("$scrypt$ln=15,r=8,p=1$\(goodSalt)$\(goodHash)"))
        #expect(PasswordHasher.standard.logN == 15)
    }

    /// Once with the production cost, so a BoringSSL memory limit on the real parameters
    /// would show up here and not at the first sign-in.
    @Test func standardCostRoundTrip() throws {
        let stored = try PasswordHasher.standard.hash("s3cret!")
        #expect(stored.hasPrefix("$scrypt$ln=15,r=8,p=1$"))
        #expect(PasswordHasher.standard.verify("s3cret!", against: stored))
    }

    @Test func dummyVerifyDoesNotCrashOnEdgeInputs() {
        fast.dummyVerify("")
        fast.dummyVerify(String(repeating: "x", count: 5000))
    }
}
