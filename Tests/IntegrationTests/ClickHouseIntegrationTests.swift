import Foundation
@testable import PipelineRunner
import Platform
import PlatformTesting
import SharedModels
import Testing

extension Integration {
    /// Pipelines into ClickHouse (the server `deploy/local.sh test` starts), through the gateway, from a customer's
    /// PostgreSQL database.
    @Suite struct ClickHouseTests {
        let pipelines = PipelineTests()

        /// ClickHouse's HTTP interface as the test's own client (a separate path from the engine's).
        struct ClickHouse {
            let port: Int
            let password: String
            let http = CurlHTTPClient()

            static func fromEnvironment() throws -> ClickHouse {
                ClickHouse(port: Int(try TestEnvironment.require("PLATFORM_TEST_CLICKHOUSE_PORT")) ?? 0,
                           password: try TestEnvironment.require("PLATFORM_TEST_CLICKHOUSE_PASSWORD"))
            }

            /// One statement's output, trimmed; a refusal fails the test.
            func query(_ sql: String) async throws -> String {
                let response = try await http.execute(TransferRequest(
                    method: "POST", url: "http://127.0.0.1:\(port)/",
                    headers: [("X-ClickHouse-User", "default"), ("X-ClickHouse-Key", password)], body: Array(sql.utf8)))
                let text = String(decoding: response.body, as: UTF8.self)
                #expect(response.status == 200, "\(sql): \(text)")
                return text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }

        @Test func rowsRoundTripIntoClickHouseExactlyAndReplaceSwapsWhole() async throws {
            let clickHouse = try ClickHouse.fromEnvironment()
            let database = "platform_" + TestEnvironment.uniqueName("t").replacingOccurrences(of: "-", with: "_")
            _ = try await clickHouse.query("CREATE DATABASE \(database)")
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let (sourceID, source) = try await pipelines.customerConnection(stack, token: engineer.access)
                let created = try await stack.send(.POST, "/api/v1/connections/", token: engineer.access, json: [
                    "name": "Warehouse " + TestEnvironment.uniqueName("ch"), "host": "127.0.0.1", "port": clickHouse.port,
                    "database": database, "username": "default", "password": clickHouse.password, "sslmode": "disable",
                ])
                let warehouse = try #require(created.json["id"] as? Int, "\(created.status)")
                // Every type the mapping handles, NULLs, and text that needs escaping.
                try await pipelines.execute("""
                    CREATE TABLE public.orders AS SELECT n::bigint AS id,
                        CASE WHEN n % 1000 = 0 THEN E'tab\\there, line\\nbreak, back\\\\slash, ''quote''' ELSE 'item ' || n END AS name,
                        ((n % 1000) * 1.25)::numeric(12,2) AS amount, n % 3 = 0 AS flag, (n % 7)::smallint AS small, n::integer AS medium,
                        n / 3.0::double precision AS ratio, timestamptz '2025-10-01 00:00:00+00' + n * interval '1 second' AS created_at,
                        date '2025-01-01' + (n % 365) AS day, CASE WHEN n % 10 = 0 THEN NULL ELSE 'note ' || n END AS note,
                        md5(n::text)::uuid AS token, n::numeric AS unbounded
                    FROM generate_series(1, 250000) AS n
                    """, in: source)
                let project = try await stack.project()
                func pipeline(_ name: String, mode: String, table: String) async throws -> String {
                    let created = try await stack.pipeline(in: project, token: engineer.access, name: name, source: sourceID, target: warehouse) {
                        $0["transformations"] = []
                        $0["targets"] = [["id": "warehouse", "type": "clickhouse", "connection_id": warehouse,
                                          "config": ["table": table, "mode": mode, "key": ["id"], "create_table": true]]]
                    }
                    let id = try #require(created.json["id"] as? String, "\(created.status): \(String(decoding: created.body, as: UTF8.self))")
                    #expect(try await stack.send(.POST, "/api/v1/pipelines/\(id)/deploy", token: engineer.access).status == 200)
                    return id
                }

                let replace = try await pipeline("to clickhouse", mode: "replace", table: "orders")
                let first = try await pipelines.run(replace, stack, token: engineer.access)
                #expect(first["status"] as? String == "success" && first["rows_processed"] as? Int == 250_000, "\(first)")
                let expected = try await pipelines.value("""
                    SELECT count(*) || ' ' || sum(amount) || ' ' || count(*) FILTER (WHERE flag) || ' ' || count(note) || ' '
                        || sum(small) || ' ' || sum(medium) || ' ' || extract(epoch FROM max(created_at))::bigint || ' ' || max(day)
                        || ' ' || sum(unbounded) AS value FROM public.orders
                    """, in: source)
                let loaded = try await clickHouse.query("""
                    SELECT concat(toString(count()), ' ', toString(sum(amount)), ' ', toString(sum(flag)), ' ', toString(count(note)), ' ',
                        toString(sum(small)), ' ', toString(sum(medium)), ' ', toString(toUInt32(max(created_at))), ' ', toString(max(day)),
                        ' ', toString(sum(toDecimal128(unbounded, 0)))) FROM \(database).orders FORMAT TSV
                    """)
                #expect(loaded == expected, "ClickHouse \(loaded) vs PostgreSQL \(String(describing: expected))")
                let types = try await clickHouse.query("SELECT name, type FROM system.columns WHERE database = '\(database)' AND table = 'orders' FORMAT TSV")
                #expect(types.contains("id\tInt64") && types.contains("amount\tNullable(Decimal(12, 2))") && types.contains("created_at\tNullable(DateTime)")
                        && types.contains("flag\tNullable(UInt8)") && types.contains("unbounded\tNullable(String)"), "\(types)")
                // Text that needs escaping arrives byte for byte.
                let odd = try await clickHouse.query("SELECT hex(name) FROM \(database).orders WHERE id = 1000 FORMAT TSV")
                let expectedOdd = try await pipelines.value("SELECT upper(encode(convert_to(name, 'UTF8'), 'hex')) AS value FROM public.orders WHERE id = 1000", in: source)
                #expect(odd == expectedOdd)
                #expect(try await clickHouse.query("SELECT token FROM \(database).orders WHERE id = 7 FORMAT TSV")
                        == (try await pipelines.value("SELECT token::text AS value FROM public.orders WHERE id = 7", in: source)))

                // Replace again after the source changed: the table is swapped whole, nothing is doubled.
                try await pipelines.execute("DELETE FROM public.orders WHERE id > 200000", in: source)
                let second = try await pipelines.run(replace, stack, token: engineer.access)
                #expect(second["status"] as? String == "success", "\(second)")
                #expect(try await clickHouse.query("SELECT count() FROM \(database).orders FORMAT TSV") == "200000")
                #expect(try await clickHouse.query("SELECT count() FROM system.tables WHERE database = '\(database)' AND name LIKE '_platform_%' AND name != '_platform_loads' FORMAT TSV") == "0")
                #expect(try await clickHouse.query("SELECT count() FROM \(database)._platform_loads FORMAT TSV") == "2")

                // A committed run delivered again (its runner died after the ledger row) is not loaded again.
                let runID = try #require(second["id"] as? String)
                let number = try #require(PublicID.run.parse(runID))
                let platform = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 1, logger: TestEnvironment.logger)
                try await withServices([platform]) {
                    try await platform.query("UPDATE pipelines.runs SET status = 'running', lease_until = now() - interval '1 minute' WHERE id = \(number)")
                }
                let append = try await pipeline("append to clickhouse", mode: "append", table: "orders_log")
                #expect(try await pipelines.run(append, stack, token: engineer.access)["status"] as? String == "success")
                #expect(try await pipelines.run(append, stack, token: engineer.access)["status"] as? String == "success")
                #expect(try await clickHouse.query("SELECT count() FROM \(database).orders_log FORMAT TSV") == "400000")
                let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
                try await withServices([redis]) {
                    try await StreamPublisher(redis: redis).publish(JobRequest(jobID: "redelivered:\(runID)", kind: .pipelineRun, runID: runID, pipelineID: replace))
                }
                let reran = await waitUntil(timeout: .seconds(30), interval: .milliseconds(200)) {
                    let logs = (try? await stack.send(.GET, "/api/v1/runs/\(runID)/logs", token: engineer.access).json["items"] as? [[String: Any]]) ?? []
                    return logs.contains { ($0["message"] as? String ?? "").contains("not loaded again") }
                }
                #expect(reran)
                #expect(try await clickHouse.query("SELECT count() FROM \(database)._platform_loads FORMAT TSV") == "4")

                // A value ClickHouse cannot hold fails the run in the source, and the target keeps what it had.
                try await pipelines.execute("UPDATE public.orders SET day = date '1969-07-20' WHERE id = 5", in: source)
                let failed = try await pipelines.run(replace, stack, token: engineer.access)
                #expect(failed["status"] as? String == "failed")
                #expect(((failed["error"] as? [String: Any])?["message"] as? String)?.contains("outside the dates ClickHouse holds") == true, "\(failed)")
                #expect(try await clickHouse.query("SELECT count() FROM \(database).orders FORMAT TSV") == "200000")
                #expect(try await clickHouse.query("SELECT count() FROM system.tables WHERE database = '\(database)' AND name LIKE '_platform_stage%' FORMAT TSV") == "0")

                // ClickHouse has no upsert: refused when the pipeline is written.
                let upsert = try await stack.pipeline(in: project, token: engineer.access, name: "upsert", source: sourceID, target: warehouse) {
                    $0["targets"] = [["id": "warehouse", "type": "clickhouse", "connection_id": warehouse,
                                      "config": ["table": "orders", "mode": "upsert", "key": ["id"]]]]
                }
                #expect(upsert.status == 422 && pipelines.problems(upsert) == ["targets[0].config.mode"])
            }
            _ = try await clickHouse.query("DROP DATABASE \(database)")
        }
    }
}
