import Foundation
import Testing
@testable import ActAsConfig

@Suite("store.url for PostgreSQL (SPEC §10.2)")
struct PostgresURLTests {
    @Test func everyPartIsRead() throws {
        let url = try PostgresURL.parse("postgres://act%40as:p%3Ass@db.example.com:6543/actas?sslmode=verify-full").get()
        #expect(url == PostgresURL(user: "act@as", password: "p:ss", host: "db.example.com", port: 6543, database: "actas", sslMode: .verifyFull))
        #expect(!url.redacted.contains("p:ss") && !url.redacted.contains("p%3Ass"))
    }

    @Test func defaultsAndIPv6() throws {
        let url = try PostgresURL.parse("postgresql://actas@[::1]/db").get()
        #expect(url == PostgresURL(user: "actas", password: nil, host: "::1", port: 5432, database: "db", sslMode: .disable))
        #expect(try PostgresURL.parse("postgres://u@h:5432/d?sslmode=require").get().sslMode == .require)
    }

    @Test(arguments: [
        ("postgres://h:5432/db", "user"),
        ("postgres://u@:5432/db", "host"),
        ("postgres://u@h:5432", "database"),
        ("postgres://u@h:5432/", "database"),
        ("postgres://u@h:99999/db", "port"),
        ("postgres://u@h:54x/db", "port"),
        ("postgres://u@h/db?sslmode=prefer", "sslmode"),
        ("postgres://u@h/db?sslrootcert=/x", "unknown parameter"),
        ("postgres://u@h/db#frag", "fragment"),
        ("postgres://u@[::1/db", "]"),
    ])
    func malformedURLsSayWhy(text: String, mentions: String) {
        guard case .failure(let error) = PostgresURL.parse(text) else {
            Issue.record("\(text) was accepted")
            return
        }
        #expect(error.message.contains(mentions), "\(error.message)")
    }

    private func load(_ text: String, path: String = "/etc/actas/proxy.conf") -> Result<ConfigLoader.Loaded, ConfigErrors> {
        ConfigLoader(path: path, environment: [:]).load(text: text)
    }

    @Test func storeKeysAreTyped() throws {
        let config = try load("""
            [store]
            url = "postgres://actas:secret@127.0.0.1:5432/actas?sslmode=require"
            pool_size = 3
            grace = "30s"
            """).get().config
        guard case .postgres(let url) = config.store.kind else {
            Issue.record("not postgres")
            return
        }
        #expect(url.password == "secret" && url.sslMode == .require)
        #expect(config.store.poolSize == 3 && config.store.grace == .seconds(30))
        let defaults = try load("").get().config
        #expect(defaults.store.poolSize == 8 && defaults.store.grace == .seconds(10))
    }

    @Test func errorsNameFileLineAndKey() {
        guard case .failure(let errors) = load("""
            [store]
            url = "postgres://actas@127.0.0.1/actas?sslmode=maybe"
            """) else {
            Issue.record("accepted")
            return
        }
        let issue = errors.issues.first
        #expect(issue?.key == "store.url" && issue?.line == 2 && issue?.file == "/etc/actas/proxy.conf", "\(errors)")
        guard case .failure(let sizes) = load("[store]\npool_size = 0\n") else {
            Issue.record("pool_size 0 accepted")
            return
        }
        #expect(sizes.issues.first?.key == "store.pool_size" && sizes.issues.first?.line == 2)
    }

    @Test func passwordFileIsReadAndNotBothPlaces() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("actas-pw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "s3cret\n".write(to: folder.appendingPathComponent("db-password"), atomically: true, encoding: .utf8)
        let path = folder.appendingPathComponent("proxy.conf").path
        let config = try load("""
            [store]
            url = "postgres://actas@127.0.0.1/actas"
            password_file = "db-password"
            """, path: path).get().config
        guard case .postgres(let url) = config.store.kind else {
            Issue.record("not postgres")
            return
        }
        #expect(url.password == "s3cret")
        guard case .failure(let both) = load("""
            [store]
            url = "postgres://actas:x@127.0.0.1/actas"
            password_file = "db-password"
            """, path: path) else {
            Issue.record("password in two places accepted")
            return
        }
        #expect(both.issues.contains { $0.key == "store.password_file" })
        guard case .failure(let missing) = load("""
            [store]
            url = "postgres://actas@127.0.0.1/actas"
            password_file = "nowhere"
            """, path: path) else {
            Issue.record("missing password file accepted")
            return
        }
        #expect(missing.issues.contains { $0.key == "store.password_file" && $0.message.contains("cannot read") })
    }
}
