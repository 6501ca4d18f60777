import Foundation
import HummingbirdWSClient
import Logging
import NIOWebSocket
import PlatformTesting
import SharedModels
import Synchronization
import Testing

extension Integration {
    /// `GET /ws/pipeline/{id}?token=...` at the gateway: a pipeline's run events, live.
    @Suite struct LiveUpdatesTests {
        let pipelines = PipelineTests()

        /// The WebSocket URL of a pipeline at the stack's gateway.
        func socket(_ stack: GatewayStack, _ pipeline: String, token: String?) -> String {
            stack.gateway.replacingOccurrences(of: "http://", with: "ws://") + "/ws/pipeline/\(pipeline)"
                + (token.map { "?token=\($0)" } ?? "")
        }

        @Test func aSocketFollowsARunFromStartToCompletion() async throws {
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let analyst = try await stack.user(.analyst)
                let (connection, customer) = try await pipelines.customerConnection(stack, token: engineer.access)
                // Big enough that the run lasts over a second, so progress is reported while it moves.
                try await pipelines.execute("""
                    CREATE TABLE public.orders AS SELECT n::bigint AS id, 'item ' || n AS name FROM generate_series(1, 1000000) AS n
                    """, in: customer)
                let created = try await stack.pipeline(in: try await stack.project(), token: engineer.access, source: connection, target: connection) {
                    $0["transformations"] = []
                    $0["targets"] = [["id": "dst", "type": "postgresql", "connection_id": connection,
                                      "config": ["table": "public.orders_copy", "mode": "replace", "key": [], "create_table": true]]]
                }
                let pipeline = try #require(created.json["id"] as? String)
                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(pipeline)/deploy", token: engineer.access).status == 200)

                let texts = Mutex<[String]>([])
                let runID = Mutex<String?>(nil)
                let close = try await withDeadline(.seconds(120)) {
                    try await WebSocketClient.connect(url: socket(stack, pipeline, token: analyst.access), logger: TestEnvironment.logger) { inbound, _, _ in
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            guard case .text(let text) = message,
                                  let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
                            texts.withLock { $0.append(text) }
                            if json["type"] as? String == "subscribed" {
                                // Following from now on: start the run.
                                let started = try await stack.send(.POST, "/api/v1/pipelines/\(pipeline)/run", token: analyst.access)
                                runID.withLock { $0 = started.json["run_id"] as? String }
                            }
                            if json["status"] as? String == "success" || json["status"] as? String == "failed" { return }
                        }
                    }
                }
                #expect(close?.closeCode == .normalClosure)
                let received = texts.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                let run = try #require(runID.withLock { $0 })
                #expect(received.first?["type"] as? String == "subscribed" && received.first?["pipeline_id"] as? String == pipeline)
                let events = received.dropFirst().filter { $0["run_id"] as? String == run }
                #expect(events.count == received.count - 1, "only this pipeline's run: \(received)")
                #expect(events.first?["event"] as? String == "started" && events.first?["status"] as? String == "running")
                let progress = events.filter { $0["event"] as? String == "progress" }
                #expect(!progress.isEmpty, "\(received)")
                #expect(progress.contains { ($0["rows_processed"] as? Int ?? 0) > 0 }, "\(progress)")
                #expect(events.last?["event"] as? String == "completed" && events.last?["status"] as? String == "success", "\(received)")
                #expect(events.last?["rows_processed"] as? Int == 1_000_000)
                #expect(events.allSatisfy { $0["pipeline_id"] as? String == pipeline && $0["timestamp"] is String })
            }
        }

        @Test func aSocketIsClosedWhenItsTokenExpires() async throws {
            // Tokens of the stack live 4 s: long enough to be accepted, short enough to expire on the open socket.
            try await GatewayStack.run(gatewaySettings: ["AUTH_ACCESS_TOKEN_TTL_SECONDS": "4"]) { stack in
                let engineer = try await stack.user(.engineer)
                let pipeline = try #require(try await stack.pipeline(in: try await stack.project(), token: engineer.access).json["id"] as? String)
                let opened = ContinuousClock.now
                let close = try await withDeadline(.seconds(30)) {
                    try await WebSocketClient.connect(url: socket(stack, pipeline, token: engineer.access), logger: TestEnvironment.logger) { inbound, _, _ in
                        for try await _ in inbound.messages(maxSize: 1 << 20) {}
                    }
                }
                #expect(close?.closeCode == .policyViolation && close?.reason == "the token has expired", "\(String(describing: close))")
                #expect(opened.duration(to: .now) < .seconds(10))
            }
        }

        @Test func aSocketWithoutAValidTokenOrPipelineIsClosedAsAPolicyViolation() async throws {
            try await GatewayStack.run { stack in
                let analyst = try await stack.user(.analyst)
                let project = try await stack.project()
                let engineer = try await stack.user(.engineer)
                let pipeline = try #require(try await stack.pipeline(in: project, token: engineer.access).json["id"] as? String)
                let cases: [(String?, String, String)] = [
                    (nil, pipeline, "token is required"),
                    ("not-a-token", pipeline, "invalid"),
                    (analyst.access, "pipeline_987654321987", "does not exist"),
                ]
                for (token, target, reason) in cases {
                    let close = try await withDeadline(.seconds(20)) {
                        try await WebSocketClient.connect(url: socket(stack, target, token: token), logger: TestEnvironment.logger) { inbound, _, _ in
                            // Nothing but the close arrives.
                            for try await message in inbound.messages(maxSize: 1 << 20) { Issue.record("unexpected message \(message)") }
                        }
                    }
                    #expect(close?.closeCode == .policyViolation, "\(reason)")
                    #expect(close?.reason?.contains(reason) == true, "\(String(describing: close?.reason))")
                }
                // A revoked token (logged out) is refused like an invalid one.
                #expect(try await stack.send(.POST, "/api/v1/auth/logout", token: analyst.access, json: ["refresh_token": analyst.refresh]).status < 300)
                let close = try await withDeadline(.seconds(20)) {
                    try await WebSocketClient.connect(url: socket(stack, pipeline, token: analyst.access), logger: TestEnvironment.logger) { _, _, _ in }
                }
                #expect(close?.closeCode == .policyViolation)
                // Other paths do not upgrade.
                await #expect(throws: WebSocketClientError.webSocketUpgradeFailed) {
                    try await WebSocketClient.connect(url: stack.gateway.replacingOccurrences(of: "http://", with: "ws://") + "/ws/other",
                                                      logger: TestEnvironment.logger) { _, _, _ in }
                }
            }
        }
    }
}
