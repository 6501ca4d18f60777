import Foundation
import Logging
import Platform
import Synchronization
import Testing

@Suite struct JSONLogHandlerTests {
    final class Lines: Sendable {
        let state = Mutex<[String]>([])
        func append(_ line: String) { state.withLock { $0.append(line) } }
        var all: [String] { state.withLock { $0 } }
    }

    @Test func writesOneJSONObjectPerLineWithMetadata() throws {
        let lines = Lines()
        var logger = Logger(label: "test") { label in
            JSONLogHandler(label: label, service: "scheduler", level: .info, output: lines.append)
        }
        logger[metadataKey: "request_id"] = "req_abc"
        logger.debug("below the level")
        logger.warning("slow \"query\"", metadata: ["elapsed_ms": "12"])
        #expect(lines.all.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines.all[0].utf8)) as? [String: Any])
        #expect(object["service"] as? String == "scheduler")
        #expect(object["level"] as? String == "warning")
        #expect(object["message"] as? String == "slow \"query\"")
        #expect(object["request_id"] as? String == "req_abc")
        #expect(object["elapsed_ms"] as? String == "12")
        #expect((object["source"] as? String)?.hasPrefix("JSONLogHandlerTests.swift:") == true)
        #expect(PostgresTimestamp.parse(object["timestamp"] as? String ?? "") != nil)
    }
}
