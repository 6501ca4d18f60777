import Foundation
import NIOPosix
@testable import PipelineRunner
import Platform
import PlatformTesting
import SharedModels
import Testing

extension Integration {
    /// The jobs the scheduler publishes besides pipeline runs (table_analysis, custom_sql, log_analysis), run by
    /// pipeline-runner against a customer database reached through a connection, their results read through the run.
    @Suite struct InspectionTests {
        let pipelines = PipelineTests()

        /// A scheduler task of `type` on `connection`, run now; pipeline-runner's run (`run_N`) once it has ended.
        func runTask(_ type: String, connection: Int, parameters: [String: Any], _ stack: GatewayStack, token: String) async throws -> [String: Any] {
            let task = try await stack.send(.POST, "/api/v1/scheduler/tasks", token: token, json: [
                "name": "\(type) " + TestEnvironment.uniqueName("t"), "task_type": type, "connection_id": connection,
                "cron_schedule": "0 0 1 1 *", "max_retries": 0, "parameters": parameters,
            ])
            let taskID = try #require(task.json["id"] as? Int, "task answered \(task.status): \(String(decoding: task.body, as: UTF8.self))")
            let started = try await stack.send(.POST, "/api/v1/scheduler/tasks/\(taskID)/run", token: token)
            let schedulerRunID = try #require(started.json["run_id"] as? String)
            // pipeline-runner's run of that job, named by the events it published about it.
            var runID: String?
            let ended = await waitUntil(timeout: .seconds(60), interval: .milliseconds(200)) {
                let events = (try? await PipelineTests.runEvents()) ?? []
                runID = events.first { $0.schedulerRunID == schedulerRunID && [.completed, .failed, .cancelled].contains($0.kind) }?.runID
                return runID != nil
            }
            #expect(ended, "the \(type) job of \(schedulerRunID) did not end")
            let run = try await stack.send(.GET, "/api/v1/runs/\(try #require(runID))", token: token).json
            // The scheduler's view of the same work names pipeline-runner's run.
            if run["status"] as? String == "success" {
                let seen = await waitUntil(timeout: .seconds(10), interval: .milliseconds(100)) {
                    let runs = (try? await stack.send(.GET, "/api/v1/scheduler/tasks/\(taskID)/runs", token: token).json["items"] as? [[String: Any]]) ?? []
                    return runs.contains { ($0["result"] as? [String: Any])?["run_id"] as? String == runID && $0["status"] as? String == "success" }
                }
                #expect(seen)
            }
            return run
        }

        /// The `error` of a run as the API shows it (`code`, `message`).
        func error(_ run: [String: Any]) -> [String: Any]? { run["error"] as? [String: Any] }

        /// Runs several statements in the customer's database, as its owner, on a connection that then ends.
        func script(_ sql: String, in database: PostgresConfiguration) async throws {
            let connection = try await PostgresConnection.connect(database, threadPool: .singleton)
            defer { connection.close() }
            try await connection.executeScript(sql)
        }

        @Test func tableAnalysisFindsWhatATableNeeds() async throws {
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let (connection, customer) = try await pipelines.customerConnection(stack, token: engineer.access)
                try await script("""
                    CREATE TABLE public.customers (id bigint PRIMARY KEY, name text);
                    CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES public.customers (id), note text);
                    CREATE INDEX orders_note_idx ON public.orders (note);
                    CREATE TABLE public.events_log (at timestamptz, message text) WITH (autovacuum_enabled = false);
                    INSERT INTO public.customers SELECT g, 'c' || g FROM generate_series(1, 10) g;
                    INSERT INTO public.orders SELECT g, 1 + g % 10, 'n' FROM generate_series(1, 300) g;
                    INSERT INTO public.events_log SELECT now(), 'm' || g FROM generate_series(1, 2000) g;
                    DELETE FROM public.events_log WHERE message <> 'm1' AND message <> 'm2' AND random() < 2;
                    """, in: customer)
                // A table the customer's role may not read: counted by nobody, analysed all the same.
                var superuserConfiguration = try TestEnvironment.superuserPostgres()
                superuserConfiguration.database = customer.database
                let superuser = PostgresClient(configuration: superuserConfiguration, maxConnections: 1, logger: TestEnvironment.logger)
                try await withServices([superuser]) { try await superuser.query("CREATE TABLE public.vault_only (id bigint PRIMARY KEY)") }
                // Statistics reach the shared counters when the writing session ends; wait until they have.
                let counted = await waitUntil(timeout: .seconds(15), interval: .milliseconds(200)) {
                    let dead = try? await pipelines.value(
                        "SELECT n_dead_tup::text AS value FROM pg_stat_user_tables WHERE relname = 'events_log'", in: customer)
                    return Int(dead ?? "0") ?? 0 >= 1_998
                }
                #expect(counted)

                let run = try await runTask("table_analysis", connection: connection, parameters: [:], stack, token: engineer.access)
                #expect(run["status"] as? String == "success", "\(run)")
                let result = try #require(run["result"] as? [String: Any])
                let tables = try #require(result["tables"] as? [[String: Any]])
                func table(_ name: String) -> [String: Any]? { tables.first { $0["name"] as? String == name } }
                func codes(_ name: String) -> [String] {
                    ((table(name)?["recommendations"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String }
                }
                #expect(Set(tables.compactMap { $0["name"] as? String }) == ["customers", "orders", "events_log", "vault_only"])
                #expect((result["uncounted"] as? [String])?.first?.hasPrefix("public.vault_only: permission denied") == true, "\(result["uncounted"] ?? "")")
                #expect(table("orders")?["exact_rows"] as? Int == 300 && table("orders")?["has_primary_key"] as? Bool == true)
                #expect((table("orders")?["total_bytes"] as? Int ?? 0) > 0)
                #expect(table("events_log")?["exact_rows"] as? Int == 2 && table("events_log")?["dead_tuples"] as? Int == 1_998)
                #expect(codes("events_log").contains("NO_PRIMARY_KEY") && codes("events_log").contains("VACUUM"), "\(codes("events_log"))")
                #expect(codes("orders").contains("UNUSED_INDEX") && codes("orders").contains("UNINDEXED_FOREIGN_KEY"), "\(codes("orders"))")
                #expect(((table("orders")?["unindexed_foreign_keys"] as? [[String: Any]])?.first?["columns"] as? [String]) == ["customer_id"])
                #expect(((table("orders")?["unused_indexes"] as? [[String: Any]])?.compactMap { $0["name"] as? String }) == ["orders_note_idx"])
                #expect(!codes("customers").contains("NO_PRIMARY_KEY"))
                #expect(result["table_count"] as? Int == 4)

                // Only the tables asked for; one that does not exist is named.
                let some = try await runTask("table_analysis", connection: connection, parameters: ["tables": ["Orders", "public.nope"]],
                                             stack, token: engineer.access)
                let someResult = try #require(some["result"] as? [String: Any])
                #expect(((someResult["tables"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String } == ["orders"])
                #expect(someResult["missing"] as? [String] == ["public.nope"])
            }
        }

        @Test func customSQLKeepsTheFirstRowsAndWritesOnlyWhenAllowed() async throws {
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let (connection, customer) = try await pipelines.customerConnection(stack, token: engineer.access)
                try await script("""
                    CREATE TABLE public.customers (id bigint PRIMARY KEY, name text);
                    INSERT INTO public.customers SELECT g, 'c' || g FROM generate_series(1, 10) g;
                    """, in: customer)

                let query = try await runTask("custom_sql", connection: connection, parameters: [
                    "sql": "SELECT g AS n, g::text AS label, g % 2 = 0 AS even, NULL::numeric AS nothing FROM generate_series(1, 2500) g",
                ], stack, token: engineer.access)
                #expect(query["status"] as? String == "success", "\(query)")
                #expect(query["rows_processed"] as? Int == 2_500)
                let result = try #require(query["result"] as? [String: Any])
                #expect(result["row_count"] as? Int == 2_500 && result["truncated"] as? Bool == true && result["read_only"] as? Bool == true)
                #expect((result["columns"] as? [[String: Any]])?.compactMap { $0["type"] as? String } == ["integer", "text", "boolean", "numeric"])
                let rows = try #require(result["rows"] as? [[Any]])
                #expect(rows.count == 1_000)
                #expect(rows.first?[0] as? Int == 1 && rows.first?[1] as? String == "1" && rows.first?[2] as? Bool == false && rows.first?[3] is NSNull)

                // A write in read-only mode is refused by PostgreSQL; a second statement cannot leave the transaction.
                for sql in ["UPDATE public.customers SET name = 'changed'", "COMMIT; UPDATE public.customers SET name = 'changed'",
                            "SET TRANSACTION READ WRITE"] {
                    let refused = try await runTask("custom_sql", connection: connection, parameters: ["sql": sql], stack, token: engineer.access)
                    #expect(refused["status"] as? String == "failed", "\(sql): \(refused)")
                    #expect(error(refused)?["code"] as? String == "DATABASE_ERROR", "\(sql): \(refused)")
                }
                let refused = try await runTask("custom_sql", connection: connection, parameters: ["sql": "DELETE FROM public.customers"],
                                                stack, token: engineer.access)
                #expect((error(refused)?["message"] as? String)?.contains("read-only transaction") == true, "\(refused)")
                #expect(try await pipelines.value("SELECT count(*)::text AS value FROM public.customers WHERE name = 'changed'", in: customer) == "0")
                #expect(try await pipelines.value("SELECT count(*)::text AS value FROM public.customers", in: customer) == "10")

                // With read_only: false the task may write.
                let write = try await runTask("custom_sql", connection: connection, parameters: [
                    "sql": "UPDATE public.customers SET name = 'changed' WHERE id <= 4", "read_only": false,
                ], stack, token: engineer.access)
                #expect(write["status"] as? String == "success", "\(write)")
                #expect((write["result"] as? [String: Any])?["row_count"] as? Int == 4 && (write["result"] as? [String: Any])?["command"] as? String == "UPDATE")
                #expect(try await pipelines.value("SELECT count(*)::text AS value FROM public.customers WHERE name = 'changed'", in: customer) == "4")

                // Whoever may run the task may not swap its statement or its mode for one run.
                let tasks = try #require(try await stack.send(.GET, "/api/v1/scheduler/tasks?task_type=custom_sql&limit=1", token: engineer.access)
                    .json["items"] as? [[String: Any]])
                let taskID = try #require(tasks.first?["id"] as? Int)
                let analyst = try await stack.user(.analyst)
                let swapped = try await stack.send(.POST, "/api/v1/scheduler/tasks/\(taskID)/run", token: analyst.access,
                                                   json: ["parameters": ["sql": "DELETE FROM public.customers", "read_only": false]])
                #expect(swapped.status == 422, "\(swapped.status)")

                // The statement timeout ends a statement that runs too long.
                let slow = try await runTask("custom_sql", connection: connection, parameters: ["sql": "SELECT pg_sleep(30)", "timeout_seconds": 1],
                                             stack, token: engineer.access)
                #expect(slow["status"] as? String == "failed" && (error(slow)?["message"] as? String)?.contains("statement timeout") == true, "\(slow)")
            }
        }

        @Test func logAnalysisShowsStatementsAndBlockedSessions() async throws {
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let (connection, customer) = try await pipelines.customerConnection(stack, token: engineer.access)
                try await pipelines.execute("CREATE TABLE public.customers (id bigint PRIMARY KEY, name text)", in: customer)

                // Without pg_stat_statements in the database: a note says what is missing.
                let without = try await runTask("log_analysis", connection: connection, parameters: [:], stack, token: engineer.access)
                #expect(without["status"] as? String == "success", "\(without)")
                let withoutResult = try #require(without["result"] as? [String: Any])
                #expect(withoutResult["statement_statistics"] as? Bool == false)
                #expect(((withoutResult["notes"] as? [String]) ?? []).contains { $0.contains("pg_stat_statements is not installed") })

                // With it (preloaded by deploy/local.sh's servers, created by a superuser): the statements, without literals.
                var superuserConfiguration = try TestEnvironment.superuserPostgres()
                superuserConfiguration.database = customer.database
                let superuser = PostgresClient(configuration: superuserConfiguration, maxConnections: 1, logger: TestEnvironment.logger)
                try await withServices([superuser]) {
                    try await superuser.query("CREATE EXTENSION pg_stat_statements")
                    try await superuser.query(PostgresQuery(unsafeSQL: "GRANT pg_read_all_stats TO \(try PostgresIdentifier(customer.username).quoted)"))
                }
                try await pipelines.execute("SELECT count(*) FROM public.customers WHERE name = 'a secret literal'", in: customer)

                // One session holds a lock, another waits for it.
                let holder = try await PostgresConnection.connect(customer, threadPool: .singleton)
                let waiter = try await PostgresConnection.connect(customer, threadPool: .singleton)
                defer { holder.close(); waiter.close() }
                try await holder.query("BEGIN")
                try await holder.query("LOCK TABLE public.customers IN ACCESS EXCLUSIVE MODE")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { _ = try await waiter.query("SELECT count(*) FROM public.customers WHERE name <> 'hidden value'") }
                    let waiting = await waitUntil(timeout: .seconds(10), interval: .milliseconds(100)) {
                        let waiters = try? await pipelines.value("""
                            SELECT count(*)::text AS value FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()
                            """, in: customer)
                        return waiters == "1"
                    }
                    #expect(waiting)
                    let with = try await runTask("log_analysis", connection: connection, parameters: ["min_duration_seconds": 0], stack, token: engineer.access)
                    try await holder.query("ROLLBACK")
                    try await group.waitForAll()

                    #expect(with["status"] as? String == "success", "\(with)")
                    let result = try #require(with["result"] as? [String: Any])
                    #expect(result["statement_statistics"] as? Bool == true, "\(result)")
                    let statements = ((result["slowest_statements"] as? [[String: Any]]) ?? []).compactMap { $0["query"] as? String }
                    #expect(statements.contains { $0.contains("FROM public.customers WHERE name =") }, "\(statements)")
                    #expect(!statements.contains { $0.contains("a secret literal") })
                    let blocked = (result["blocked_sessions"] as? [[String: Any]]) ?? []
                    #expect(blocked.count == 1, "\(result)")
                    #expect((blocked.first?["blocked_by"] as? [Int])?.count == 1)
                    #expect((blocked.first?["query"] as? String)?.contains("name <> '?'") == true, "\(blocked)")
                    let long = ((result["long_running_sessions"] as? [[String: Any]]) ?? []).compactMap { $0["state"] as? String }
                    #expect(long.contains("idle in transaction"), "\(result)")
                }
            }
        }
    }
}
