import Foundation
@testable import PipelineRunner
import Platform
import PlatformTesting
import SharedModels
import Testing

extension Integration {
    /// pipeline-runner as real processes killed with SIGKILL: a run whose runner dies mid-copy is finished by
    /// another runner with exactly the source's rows; a runner that dies right after its load committed does not
    /// have its run loaded again.
    @Suite struct RunnerCrashTests {
        let pipelines = PipelineTests()

        /// A `pipeline-runner` process from this build, with the stack's addresses and keys.
        final class RunnerProcess {
            let process = Process()
            let port: Int

            init(_ stack: GatewayStack, port: Int) throws {
                self.port = port
                let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent(".build/debug/pipeline-runner")
                let postgres = try TestEnvironment.postgres()
                let redis = try TestEnvironment.redis()
                var environment = ProcessInfo.processInfo.environment
                environment.merge([
                    "HTTP_HOST": "127.0.0.1", "HTTP_PORT": String(port), "LOG_LEVEL": "warning",
                    "POSTGRES_HOST": postgres.host, "POSTGRES_PORT": String(postgres.port), "POSTGRES_USER": postgres.username,
                    "POSTGRES_PASSWORD": postgres.password ?? "", "POSTGRES_DATABASE": postgres.database,
                    "REDIS_HOST": redis.host, "REDIS_PORT": String(redis.port),
                    "SERVICE_URL_CONNECTIONS_VAULT": try #require(stack.services["connections-vault"]),
                    "SERVICE_URL_SCHEDULER": try #require(stack.services["scheduler"]),
                    "SERVICE_TOKEN_KEY": stack.serviceTokenKeyText, "AUTH_JWKS_URL": stack.gateway + "/.well-known/jwks.json",
                    // A dead runner's job comes back after 6 s, and its run's lease (half that) has expired by then.
                    "JOBS_VISIBILITY_TIMEOUT_SECONDS": "6", "SWIFT_BACKTRACE": "enable=no",
                ]) { _, new in new }
                process.executableURL = binary
                process.environment = environment
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
            }

            /// Waits until the process answers `/health`.
            func ready(_ stack: GatewayStack) async -> Bool {
                await waitUntil(timeout: .seconds(30), interval: .milliseconds(100)) {
                    (try? await stack.send(.GET, "/health", base: "http://127.0.0.1:\(port)"))?.status == 200
                }
            }

            func kill() {
                Foundation.kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }

            deinit { if process.isRunning { kill() } }
        }

        /// The run as pipeline-runner's table holds it (the gateway's route to pipeline-runner dies with it).
        func run(_ id: Int64) async throws -> (status: String, owner: String?, compiled: Bool, rows: Int64) {
            let postgres = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 1, logger: TestEnvironment.logger)
            return try await withServices([postgres]) {
                let row = try #require(try await postgres.query("""
                    SELECT status, owner, compiled_sql IS NOT NULL AS compiled, rows_processed FROM pipelines.runs WHERE id = \(id)
                    """).first)
                return (try row.decode("status"), try row.decode("owner"), try row.decode("compiled"), try row.decode("rows_processed"))
            }
        }

        func logs(_ id: Int64) async throws -> [String] {
            let postgres = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 1, logger: TestEnvironment.logger)
            return try await withServices([postgres]) {
                try await postgres.query("SELECT message FROM pipelines.run_logs WHERE run_id = \(id) ORDER BY id").map { try $0.decode("message") }
            }
        }

        /// A stack whose pipeline-runner is a process the test starts (`runner`), with a deployed `append` pipeline
        /// from a table of `rows` rows into another database. `body` gets the stack, the pipeline, the runner and a way
        /// to start another runner in its place (the gateway's route to pipeline-runner is its port).
        func withCrashablePipeline(rows: Int, _ body: (_ stack: GatewayStack, _ pipeline: String, _ runner: RunnerProcess,
                                                        _ replacement: () async throws -> RunnerProcess,
                                                        _ source: PostgresConfiguration, _ target: PostgresConfiguration) async throws -> Void) async throws {
            let port = try TestEnvironment.freePort()
            try await GatewayStack.run(replace: ["PIPELINE_RUNNER": "http://127.0.0.1:\(port)"], gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let runner = try RunnerProcess(stack, port: port)
                #expect(await runner.ready(stack))
                let engineer = try await stack.user(.engineer)
                let (sourceID, source) = try await pipelines.customerConnection(stack, token: engineer.access)
                let (targetID, target) = try await pipelines.customerConnection(stack, token: engineer.access)
                try await pipelines.execute(PostgresQuery(unsafeSQL: """
                    CREATE TABLE public.orders AS SELECT n::bigint AS id, 'item ' || n AS name, (n % 1000) * 1.5 AS amount
                    FROM generate_series(1, \(rows)) AS n
                    """), in: source)
                let created = try await stack.pipeline(in: try await stack.project(), token: engineer.access, source: sourceID, target: targetID) {
                    $0["transformations"] = []
                    $0["targets"] = [["id": "dst", "type": "postgresql", "connection_id": targetID,
                                      "config": ["table": "public.copied", "mode": "append", "create_table": true]]]
                }
                let pipeline = try #require(created.json["id"] as? String)
                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(pipeline)/deploy", token: engineer.access).status == 200)
                var started: [RunnerProcess] = []
                defer { started.forEach { $0.kill() } }
                try await body(stack, pipeline, runner, {
                    let next = try RunnerProcess(stack, port: port)
                    started.append(next)
                    #expect(await next.ready(stack))
                    return next
                }, source, target)
                runner.kill()
            }
        }

        /// Starts a run through the gateway and returns its number.
        func start(_ pipeline: String, _ stack: GatewayStack) async throws -> Int64 {
            let engineer = try await stack.user(.engineer)
            let started = try await stack.send(.POST, "/api/v1/pipelines/\(pipeline)/run", token: engineer.access, json: [:])
            return try #require(PublicID.run.parse(started.json["run_id"] as? String ?? ""), "run answered \(started.status)")
        }

        /// Count, sum of ids and sum of amounts of a table.
        func digest(_ table: String, in database: PostgresConfiguration) async throws -> String? {
            try await pipelines.value(PostgresQuery(unsafeSQL: """
                SELECT count(*)::text || ':' || coalesce(sum(id), 0)::text || ':' || coalesce(sum(amount), 0)::text AS value FROM public.\(table)
                """), in: database)
        }

        @Test func aRunnerKilledMidCopyIsReplacedAndTheTargetGetsEveryRowOnce() async throws {
            try await withCrashablePipeline(rows: 2_000_000) { stack, pipeline, runner, replacement, source, target in
                let id = try await start(pipeline, stack)
                // Killed while rows are moving.
                let moving = await waitUntil(timeout: .seconds(60), interval: .milliseconds(50)) {
                    let events = (try? await PipelineTests.runEvents()) ?? []
                    return events.contains { $0.runID == PublicID.run.format(id) && $0.kind == .progress && $0.rowsWritten > 0 }
                }
                #expect(moving)
                runner.kill()
                let killed = try await run(id)
                #expect(killed.status == "running")

                _ = try await replacement()
                let finished = await waitUntil(timeout: .seconds(120), interval: .milliseconds(200)) { (try? await run(id).status) == "success" }
                let after = try await run(id)
                #expect(finished, "\(after)")
                #expect(after.owner != nil && after.owner != killed.owner, "another runner finished it: \(after)")
                #expect(after.rows == 2_000_000)
                #expect(try await digest("copied", in: target) == (try await digest("orders", in: source)))
                #expect(try await pipelines.value("SELECT count(*)::text AS value FROM public._platform_loads", in: target) == "1")
                #expect(try await pipelines.value("SELECT count(*)::text AS value FROM pg_tables WHERE tablename LIKE '\\_platform\\_stage%'", in: target) == "0")
            }
        }

        @Test func aRunnerKilledRightAfterItsCommitIsNotLoadedAgain() async throws {
            try await withCrashablePipeline(rows: 1_000_000) { stack, pipeline, runner, replacement, source, target in
                let id = try await start(pipeline, stack)
                // Once the run has recorded its query, it updates its own row again only to renew its lease and to
                // record its end: holding that row (NO KEY UPDATE, so its log lines, whose foreign key takes KEY SHARE,
                // still go in) lets the load commit in the target and stops the runner right before it records the end.
                let compiled = await waitUntil(timeout: .seconds(60), interval: .milliseconds(20)) { (try? await run(id).compiled) == true }
                #expect(compiled)
                let lock = try await PostgresConnection.connect(try TestEnvironment.postgres(), threadPool: .singleton)
                defer { lock.close() }
                try await lock.query("BEGIN")
                try await lock.query("SELECT 1 FROM pipelines.runs WHERE id = \(id) FOR NO KEY UPDATE")
                let committed = await waitUntil(timeout: .seconds(60), interval: .milliseconds(20)) {
                    let rows = try? await pipelines.value(PostgresQuery(unsafeSQL: """
                        SELECT count(*)::text AS value FROM public._platform_loads WHERE run_id = '\(PublicID.run.format(id))'
                        """), in: target)
                    return rows == "1"
                }
                #expect(committed)
                runner.kill()
                // The dead runner's last statement (recording the end) waits for the lock on the server, which does not
                // notice a vanished client while a statement waits. End it, as client_connection_check_interval would:
                // the run's end is then never recorded, as when the runner dies before sending it.
                try await lock.query("""
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))
                    """)
                try await lock.query("ROLLBACK")
                #expect(try await run(id).status == "running")

                _ = try await replacement()
                let finished = await waitUntil(timeout: .seconds(120), interval: .milliseconds(200)) { (try? await run(id).status) == "success" }
                #expect(finished)
                let lines = try await logs(id)
                #expect(lines.contains { $0.contains("not loaded again") }, "\(lines)")
                #expect(try await digest("copied", in: target) == (try await digest("orders", in: source)))
                #expect(try await pipelines.value("SELECT count(*)::text AS value FROM public._platform_loads", in: target) == "1")
            }
        }
    }
}
