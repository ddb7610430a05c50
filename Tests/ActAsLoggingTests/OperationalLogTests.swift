import ActAsLogging
import Foundation
import Logging
import Synchronization
import Testing

@Suite struct OperationalLogTests {
    static let time = Date(timeIntervalSince1970: 1_796_641_326.125)  // 2026-12-07T11:02:06.125Z (exact in binary)

    func line(_ message: String, level: Logger.Level = .warning, error: String? = nil, metadata: Logger.Metadata = [:]) -> OperationalLogLine {
        OperationalLogLine(time: Self.time, level: level, label: "actas.store", message: message, source: "ActAsStorePostgres",
                           error: error, metadata: metadata)
    }

    func parsed(_ json: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test func textIsTimeLevelLabelMessageThenSortedMetadata() {
        let text = line("store change listener reconnected", metadata: ["attempt": "3", "after": "1.6 s"]).text()
        #expect(text == "2026-12-07T11:02:06.125Z warning actas.store: store change listener reconnected after=\"1.6 s\" attempt=3")
    }

    @Test func jsonHasFixedKeysInOrderAndNestedMetadata() throws {
        let json = line("resynchronised", level: .info, error: "connection reset", metadata: [
            "changes": .stringConvertible(12), "instances": .array(["a:1", "b:2"]), "pool": .dictionary(["size": "8"]),
        ]).json()
        #expect(json.hasPrefix(#"{"ts":"2026-12-07T11:02:06.125Z","level":"info","logger":"actas.store","message":"resynchronised","source":"ActAsStorePostgres","error":"connection reset","metadata":"#))
        let object = try parsed(json)
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["changes"] as? String == "12")
        #expect(metadata["instances"] as? [String] == ["a:1", "b:2"])
        #expect((metadata["pool"] as? [String: String]) == ["size": "8"])
        #expect(!json.contains("\n"))
    }

    /// A value from the database or a request cannot start a second line or drive a terminal.
    @Test(arguments: ["bob\nactas: forged line", "bob\r\u{1b}[2J", "a\u{2028}b", "x\u{202e}evil", "\"quoted\" \\ back"])
    func controlCharactersAreEscapedInBothFormats(hostile: String) throws {
        let entry = line("user \(hostile) suspended", error: hostile, metadata: ["user": .string(hostile), hostile: "key"])
        for rendered in [entry.text(), entry.json()] {
            #expect(!rendered.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{2028}" || $0 == "\u{202e}" || $0 == "\u{1b}" }, "\(rendered)")
        }
        let object = try parsed(entry.json())
        #expect(object["message"] as? String == "user \(hostile) suspended")
        #expect(object["error"] as? String == hostile)
        #expect((object["metadata"] as? [String: String])?[hostile] == "key")
    }

    @Test func handlerMergesLoggerMetadataAndHonoursItsLevel() throws {
        let written = Mutex<[String]>([])
        var logger = Logger(label: "actas") { label in
            OperationalLogHandler(label: label, format: .json) { line in written.withLock { $0.append(line) } }
        }
        logger[metadataKey: "instance"] = "host:9090"
        logger.debug("not written at the default level")
        logger.info("reloaded proxy.conf", metadata: ["warnings": "0"])
        let lines = written.withLock { $0 }
        #expect(lines.count == 1)
        let object = try parsed(try #require(lines.first))
        #expect(object["logger"] as? String == "actas" && object["level"] as? String == "info")
        #expect(object["metadata"] as? [String: String] == ["instance": "host:9090", "warnings": "0"])
    }
}
