import Foundation
import NIOCore
@testable import PipelineRunner
import Platform
import PlatformTesting
import SharedModels
import Testing

extension GatewayStack {
    /// A project made by an architect, for the tests of pipelines.
    func project(_ name: String = TestEnvironment.uniqueName("project")) async throws -> String {
        let architect = try await user(.architect)
        let created = try await send(.POST, "/api/v1/projects", token: architect.access, json: ["name": name, "description": "for tests"])
        guard created.status == 201, let id = created.json["id"] as? String else { throw StackFailure("project answered \(created.status)") }
        return id
    }

    /// A draft pipeline from `source` table of connection `source` into `target`'s table (ids from the vault), by `token`.
    func pipeline(in project: String, token: String, name: String = TestEnvironment.uniqueName("pipeline"), source: Int = 1,
                  target: Int = 2, change: (inout [String: Any]) -> Void = { _ in }) async throws -> Reply {
        var body: [String: Any] = [
            "project_id": project, "name": name, "description": "orders by day",
            "sources": [["id": "src", "type": "postgresql", "connection_id": source, "config": ["table": "public.orders"]]],
            "transformations": [
                ["type": "filter", "condition": "amount > 0"],
                ["type": "derive", "column": "day", "expression": "date_trunc('day', created_at)"],
                ["type": "aggregate", "group_by": ["day"], "aggregations": ["total": "sum(amount)"]],
            ],
            "targets": [["id": "dst", "type": "postgresql", "connection_id": target,
                         "config": ["table": "public.daily", "mode": "upsert", "key": ["day"], "create_table": true]]],
        ]
        change(&body)
        return try await send(.POST, "/api/v1/pipelines", token: token, json: body)
    }
}

extension Integration {
    /// pipeline-runner's resources through the gateway, against a customer database reached through a connection
    /// of connections-vault.
    @Suite struct PipelineTests {
        /// A connection to a fresh customer database, and the database, to shape it.
        func customerConnection(_ stack: GatewayStack, token: String) async throws -> (id: Int, database: PostgresConfiguration) {
            let database = try await ConnectionsTests.customerDatabase()
            var body = ConnectionsTests().credentials(database)
            body["name"] = "Customer " + TestEnvironment.uniqueName("c")
            let created = try await stack.send(.POST, "/api/v1/connections/", token: token, json: body)
            let id = try #require(created.json["id"] as? Int, "connection answered \(created.status)")
            return (id, database)
        }

        /// Runs one statement in the customer's database, as its owner.
        func execute(_ statement: PostgresQuery, in database: PostgresConfiguration) async throws {
            let client = PostgresClient(configuration: database, maxConnections: 1, logger: TestEnvironment.logger)
            try await withServices([client]) { try await client.query(statement) }
        }

        func problems(_ reply: GatewayStack.Reply) -> [String] {
            let details = (reply.json["error"] as? [String: Any])?["details"] as? [String: Any]
            return ((details?["problems"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String }
        }

        /// Create → update → versions → rollback; then deploy fails with a precise list for a missing table and
        /// column, and succeeds once they exist; its schedule becomes a scheduler task that pause and resume reach.
        @Test func versionsDeployAndSchedule() async throws {
            try await GatewayStack.run { stack in
                let engineer = try await stack.user(.engineer)
                let (connection, customer) = try await customerConnection(stack, token: engineer.access)
                let project = try await stack.project()
                let created = try await stack.pipeline(in: project, token: engineer.access, source: connection, target: connection) {
                    $0["schedule"] = "0 3 * * *"
                    $0["sources"] = [["id": "src", "type": "postgresql", "connection_id": connection, "config": ["table": "public.orders"],
                                      "incremental": ["cursor_column": "created_at"]]]
                }
                #expect(created.status == 201)
                #expect(created.json["status"] as? String == "draft" && created.json["version"] as? Int == 1)
                let id = try #require(created.json["id"] as? String)
                #expect(id.hasPrefix("pipeline_"))

                let updated = try await stack.send(.PUT, "/api/v1/pipelines/\(id)", token: engineer.access, json: ["description": "changed"])
                #expect(updated.status == 200 && updated.json["version"] as? Int == 2 && updated.json["description"] as? String == "changed")
                let versions = try await stack.send(.GET, "/api/v1/pipelines/\(id)/versions", token: engineer.access)
                #expect((versions.json["items"] as? [[String: Any]])?.compactMap { $0["version"] as? Int } == [2, 1])
                let rolledBack = try await stack.send(.POST, "/api/v1/pipelines/\(id)/rollback", token: engineer.access, json: ["version": 1])
                #expect(rolledBack.json["version"] as? Int == 3 && rolledBack.json["description"] as? String == "orders by day")
                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(id)/rollback", token: engineer.access, json: ["version": 7]).status == 422)

                // Neither the table nor (then) its column exists.
                let missingTable = try await stack.send(.POST, "/api/v1/pipelines/\(id)/deploy", token: engineer.access)
                #expect(missingTable.status == 422)
                #expect(problems(missingTable) == ["sources[0].config.table"])
                try await execute("CREATE TABLE public.orders (id bigint PRIMARY KEY, amount numeric, placed_at timestamptz)", in: customer)
                let missingColumn = try await stack.send(.POST, "/api/v1/pipelines/\(id)/deploy", token: engineer.access)
                #expect(missingColumn.status == 422)
                #expect(problems(missingColumn) == ["sources[0].incremental.cursor_column"])
                #expect(try await stack.send(.GET, "/api/v1/pipelines/\(id)", token: engineer.access).json["status"] as? String == "draft")
                try await execute("ALTER TABLE public.orders ADD COLUMN created_at timestamptz", in: customer)
                let deployed = try await stack.send(.POST, "/api/v1/pipelines/\(id)/deploy", token: engineer.access)
                #expect(deployed.status == 200, "\(String(decoding: deployed.body, as: UTF8.self))")
                #expect(deployed.json["status"] as? String == "deployed" && deployed.json["version"] as? Int == 3)
                #expect(deployed.json["deployment_id"] as? String == "\(id)_v3")
                let taskID = try #require(deployed.json["schedule_task_id"] as? Int)

                let task = try await stack.send(.GET, "/api/v1/scheduler/tasks/\(taskID)", token: engineer.access)
                #expect(task.json["pipeline_id"] as? String == id && task.json["cron_schedule"] as? String == "0 3 * * *")
                #expect(task.json["enabled"] as? Bool == true)
                #expect(try await stack.send(.GET, "/api/v1/pipelines/\(id)", token: engineer.access).json["status"] as? String == "active")

                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(id)/pause", token: engineer.access).json["status"] as? String == "paused")
                #expect(try await stack.send(.GET, "/api/v1/scheduler/tasks/\(taskID)", token: engineer.access).json["enabled"] as? Bool == false)
                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(id)/resume", token: engineer.access).json["status"] as? String == "active")
                #expect(try await stack.send(.GET, "/api/v1/scheduler/tasks/\(taskID)", token: engineer.access).json["enabled"] as? Bool == true)

                // The scheduler accepts tasks only for pipelines that exist.
                let scheduled = try await stack.send(.POST, "/api/v1/scheduler/tasks", token: engineer.access, json: [
                    "name": "extra", "task_type": "pipeline_run", "pipeline_id": id, "cron_schedule": "0 5 * * *",
                ])
                #expect(scheduled.status == 201)
                let ghost = try await stack.send(.POST, "/api/v1/scheduler/tasks", token: engineer.access, json: [
                    "name": "ghost", "task_type": "pipeline_run", "pipeline_id": "pipeline_987654321987", "cron_schedule": "0 5 * * *",
                ])
                #expect(ghost.status == 422)

                // Deleting the pipeline disables its tasks (through platform:pipeline-events).
                #expect(try await stack.send(.DELETE, "/api/v1/pipelines/\(id)", token: engineer.access).status == 204)
                let extraID = try #require(scheduled.json["id"] as? Int)
                let disabled = await waitUntil(timeout: .seconds(15), interval: .milliseconds(100)) {
                    let tasks = [taskID, extraID].map { "/api/v1/scheduler/tasks/\($0)" }
                    for path in tasks {
                        let reply = try? await stack.send(.GET, path, token: engineer.access)
                        guard reply?.json["enabled"] as? Bool == false, reply?.json["deactivated_reason"] is String else { return false }
                    }
                    return true
                }
                #expect(disabled)
            }
        }

        /// A run by hand is one queued run and exactly one job; a job the scheduler publishes twice is one run.
        @Test func runsAndJobs() async throws {
            // Waiting on runs polls the gateway faster than the tests' usual per-user limit allows.
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let analyst = try await stack.user(.analyst)
                let (connection, customer) = try await customerConnection(stack, token: engineer.access)
                try await execute("CREATE TABLE public.orders (id bigint PRIMARY KEY, amount numeric, created_at timestamptz)", in: customer)
                let project = try await stack.project()
                let id = try #require(try await stack.pipeline(in: project, token: engineer.access, source: connection, target: connection).json["id"] as? String)
                let draftRun = try await stack.send(.POST, "/api/v1/pipelines/\(id)/run", token: analyst.access)
                #expect(draftRun.status == 422)
                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(id)/deploy", token: engineer.access).status == 200)

                let started = try await stack.send(.POST, "/api/v1/pipelines/\(id)/run", token: analyst.access,
                                                   json: ["parameters": ["start_date": "2025-10-01", "end_date": "2025-10-02"]])
                #expect(started.status == 202)
                #expect(started.json["status"] as? String == "queued" && started.json["pipeline_id"] as? String == id)
                let runID = try #require(started.json["run_id"] as? String)
                let jobs = try await Self.jobEntries { $0.runID == runID }
                #expect(jobs.count == 1)
                #expect(jobs.first?.job.pipelineID == id && jobs.first?.job.parameters["end_date"] == "2025-10-02")

                // The engine runs it (the orders table is empty): success, with its figures and its compiled query.
                let run = try await self.run(wait: runID, stack, token: analyst.access)
                #expect(run["status"] as? String == "success" && run["trigger"] as? String == "manual", "\(run)")
                #expect(run["rows_processed"] as? Int == 0 && (run["metrics"] as? [String: Any])?["loading_time_ms"] is Int)
                #expect((run["compiled_sql"] as? String)?.contains("GROUP BY \"day\"") == true)
                let logs = try await stack.send(.GET, "/api/v1/runs/\(runID)/logs", token: analyst.access)
                #expect((logs.json["items"] as? [[String: Any]])?.first?["message"] as? String == "queued by \(analyst.id) (version 1)")

                // The scheduler's job, delivered twice: one run that carries the scheduler's ids.
                let schedulerRun = "taskrun_\(Int.random(in: 1_000_000_000...9_000_000_000))"
                let job = JobRequest(jobID: "task_77:\(Int.random(in: 1...1_000_000_000)):1", kind: .pipelineRun, runID: schedulerRun, taskID: 77, pipelineID: id)
                let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
                let entries = try await withServices([redis]) {
                    let publisher = StreamPublisher(redis: redis)
                    return [try await publisher.publish(job), try await publisher.publish(job)]
                }
                let bothTaken = await waitUntil(timeout: .seconds(20), interval: .milliseconds(100)) {
                    (try? await Self.acknowledged(entries)) == true
                }
                #expect(bothTaken)
                let runs = try await stack.send(.GET, "/api/v1/pipelines/\(id)/runs?limit=100", token: analyst.access)
                let items = try #require(runs.json["items"] as? [[String: Any]])
                #expect(items.filter { $0["scheduler_run_id"] as? String == schedulerRun }.count == 1)
                #expect(items.count == 2 && runs.json["total"] as? Int == 2)
                #expect(items.first { $0["scheduler_run_id"] as? String == schedulerRun }?["trigger"] as? String == "schedule")
                let schedulerRunID = try #require(items.first { $0["scheduler_run_id"] as? String == schedulerRun }?["id"] as? String)
                #expect(try await self.run(wait: schedulerRunID, stack, token: analyst.access)["status"] as? String == "success")
                let succeeded = try await stack.send(.GET, "/api/v1/pipelines/\(id)/runs?status=success&limit=1", token: analyst.access)
                #expect((succeeded.json["items"] as? [[String: Any]])?.count == 1 && succeeded.json["total"] as? Int == 2)
                #expect(try await stack.send(.GET, "/api/v1/pipelines/\(id)/runs?status=lost", token: analyst.access).status == 422)

                // A run that has ended cannot be cancelled.
                #expect(try await stack.send(.POST, "/api/v1/runs/\(runID)/cancel", token: analyst.access).status == 409)
                #expect(try await stack.send(.GET, "/api/v1/runs/run_999999999999", token: analyst.access).status == 404)
                #expect(try await stack.send(.GET, "/api/v1/runs/nonsense", token: analyst.access).status == 404)
            }
        }

        /// Delete → gone → restore → back; a dry-run cleanup counts and deletes nothing; a permanent delete cascades.
        @Test func deletionsAndTheAdminAPI() async throws {
            try await GatewayStack.run { stack in
                let engineer = try await stack.user(.engineer)
                let admin = try await stack.user(.admin)
                let project = try await stack.project()
                let first = try #require(try await stack.pipeline(in: project, token: engineer.access).json["id"] as? String)
                let second = try #require(try await stack.pipeline(in: project, token: engineer.access).json["id"] as? String)
                func listed() async throws -> [String] {
                    let reply = try await stack.send(.GET, "/api/v1/pipelines?project_id=\(project)", token: engineer.access)
                    return ((reply.json["items"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
                }
                #expect(try await listed() == [first, second])

                #expect(try await stack.send(.DELETE, "/api/v1/pipelines/\(first)", token: engineer.access).status == 204)
                #expect(try await listed() == [second])
                #expect(try await stack.send(.GET, "/api/v1/pipelines/\(first)", token: engineer.access).status == 404)
                let deleted = try await stack.send(.GET, "/api/v1/admin/deleted-entities?entity_type=pipelines&limit=500", token: admin.access)
                let entry = try #require((deleted.json["items"] as? [[String: Any]])?.first { $0["entity_id"] as? String == first })
                #expect(entry["entity_type"] as? String == "pipeline" && entry["can_restore"] as? Bool == true)
                #expect(entry["deleted_by"] as? String == engineer.id)
                let stats = try await stack.send(.GET, "/api/v1/admin/deletion-stats", token: admin.access)
                #expect(((stats.json["by_type"] as? [String: Any])?["pipelines"] as? Int ?? 0) >= 1)

                // A dry run counts, deletes nothing.
                let dry = try await stack.send(.POST, "/api/v1/admin/cleanup-old-deletions", token: admin.access,
                                               json: ["older_than_days": 0, "entity_types": ["pipelines"], "dry_run": true])
                #expect(dry.status == 200 && dry.json["dry_run"] as? Bool == true)
                #expect((dry.json["entities_to_delete"] as? Int ?? 0) >= 1)
                #expect(try await stack.send(.GET, "/api/v1/admin/deleted-entities?entity_type=pipeline&limit=500", token: admin.access)
                    .json["items"].map { ($0 as? [[String: Any]] ?? []).contains { $0["entity_id"] as? String == first } } == true)

                let restored = try await stack.send(.POST, "/api/v1/admin/pipelines/\(first)/restore", token: admin.access)
                #expect(restored.status == 200 && restored.json["restored"] as? Bool == true)
                #expect(try await listed() == [first, second])
                #expect(try await stack.send(.POST, "/api/v1/admin/pipelines/\(first)/restore", token: admin.access).status == 409)

                // The project's deletion takes both; its restore brings both back.
                #expect(try await stack.send(.DELETE, "/api/v1/projects/\(project)", token: admin.access).status == 204)
                #expect(try await stack.send(.GET, "/api/v1/projects/\(project)", token: admin.access).status == 404)
                #expect(try await stack.send(.GET, "/api/v1/pipelines/\(second)", token: admin.access).status == 404)
                let restoredProject = try await stack.send(.POST, "/api/v1/admin/projects/\(project)/restore", token: admin.access)
                #expect((restoredProject.json["related_entities_restored"] as? [String: Any])?["pipelines"] as? Int == 2)
                #expect(try await listed() == [first, second])

                // For good: the project, its pipelines, their versions.
                let purged = try await stack.send(.DELETE, "/api/v1/admin/projects/\(project)/permanent", token: admin.access)
                #expect(purged.status == 200 && purged.json["permanently_deleted"] as? Bool == true)
                let cascade = try #require(purged.json["cascade_deleted"] as? [String: Any])
                #expect(cascade["pipelines"] as? Int == 2 && cascade["versions"] as? Int == 2)
                #expect(try await stack.send(.DELETE, "/api/v1/admin/projects/\(project)/permanent", token: admin.access).status == 404)
                #expect(try await stack.send(.POST, "/api/v1/admin/projects/\(project)/restore", token: admin.access).status == 404)

                // The audit trail has every change.
                let audit = try await ConnectionsTests.recentAuditRecords()
                for action in ["pipeline.create", "pipeline.delete", "pipeline.restore", "project.delete", "project.restore", "project.purge"] {
                    #expect(audit.contains(action), "\(action) is not on platform:audit")
                }
            }
        }

        /// Pagination and filters, and the role rules of the gateway for these routes.
        @Test func listsAndRoles() async throws {
            try await GatewayStack.run { stack in
                let analyst = try await stack.user(.analyst)
                let engineer = try await stack.user(.engineer)
                let project = try await stack.project()
                var ids: [String] = []
                for index in 0..<5 {
                    ids.append(try #require(try await stack.pipeline(in: project, token: engineer.access, name: "P\(index)").json["id"] as? String))
                }
                let page = try await stack.send(.GET, "/api/v1/pipelines?project_id=\(project)&limit=2&offset=2", token: analyst.access)
                #expect((page.json["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == Array(ids[2..<4]))
                #expect(page.json["total"] as? Int == 5 && page.json["limit"] as? Int == 2 && page.json["offset"] as? Int == 2)
                #expect(try await stack.send(.GET, "/api/v1/pipelines?project_id=\(project)&status=active", token: analyst.access).json["total"] as? Int == 0)
                #expect(try await stack.send(.GET, "/api/v1/pipelines?project_id=\(project)&status=draft", token: analyst.access).json["total"] as? Int == 5)
                #expect(try await stack.send(.GET, "/api/v1/pipelines?limit=101", token: analyst.access).status == 422)
                #expect(try await stack.send(.GET, "/api/v1/pipelines?status=running", token: analyst.access).status == 422)
                #expect(try await stack.send(.GET, "/api/v1/pipelines?project_id=12", token: analyst.access).status == 422)
                let listed = try await stack.send(.GET, "/api/v1/pipelines?project_id=\(project)&limit=1", token: analyst.access)
                let item = try #require((listed.json["items"] as? [[String: Any]])?.first)
                #expect(item["last_run"] is NSNull && item["sources"] == nil)
                #expect(try await stack.send(.GET, "/api/v1/projects/\(project)", token: analyst.access).json["pipelines_count"] as? Int == 5)

                // Analysts read and run; engineers change pipelines; architects own projects; admins the admin API.
                #expect(try await stack.pipeline(in: project, token: analyst.access).status == 403)
                #expect(try await stack.send(.PUT, "/api/v1/pipelines/\(ids[0])", token: analyst.access, json: ["name": "x"]).status == 403)
                #expect(try await stack.send(.DELETE, "/api/v1/pipelines/\(ids[0])", token: analyst.access).status == 403)
                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(ids[0])/deploy", token: analyst.access).status == 403)
                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(ids[0])/run", token: analyst.access).status == 422)
                #expect(try await stack.send(.POST, "/api/v1/projects", token: engineer.access, json: ["name": "no"]).status == 403)
                #expect(try await stack.send(.DELETE, "/api/v1/projects/\(project)", token: engineer.access).status == 403)
                #expect(try await stack.send(.GET, "/api/v1/admin/deletion-stats", token: engineer.access).status == 403)
                #expect(try await stack.send(.GET, "/api/v1/projects", token: nil).status == 401)
                // Names are unique in a project; bodies that are not objects are refused.
                #expect(try await stack.pipeline(in: project, token: engineer.access, name: "p0").status == 409)
                #expect(try await stack.send(.POST, "/api/v1/pipelines", token: engineer.access,
                                             headers: [("Content-Type", "application/json")], body: .bytes(ByteBuffer(string: "[1, 2]"))).status == 422)
                #expect(try await stack.send(.POST, "/api/v1/pipelines", token: engineer.access,
                                             headers: [("Content-Type", "application/json")], body: .bytes(ByteBuffer(string: "{\"name\": "))).status == 400)
            }
        }

        /// One scalar of a customer's database.
        func value(_ query: PostgresQuery, in database: PostgresConfiguration) async throws -> String? {
            let client = PostgresClient(configuration: database, maxConnections: 1, logger: TestEnvironment.logger)
            return try await withServices([client]) { try await client.query(query).first?.decode("value", as: String?.self) }
        }

        /// Runs the pipeline through the gateway and waits for the run to end; the run as the API shows it.
        func run(_ pipeline: String, _ stack: GatewayStack, token: String, parameters: [String: Any] = [:]) async throws -> [String: Any] {
            let started = try await stack.send(.POST, "/api/v1/pipelines/\(pipeline)/run", token: token, json: ["parameters": parameters])
            return try await run(wait: try #require(started.json["run_id"] as? String, "run answered \(started.status)"), stack, token: token)
        }

        /// Waits for a run to end; the run as the API shows it.
        func run(wait runID: String, _ stack: GatewayStack, token: String) async throws -> [String: Any] {
            var last: [String: Any] = [:]
            let ended = await waitUntil(timeout: .seconds(120), interval: .milliseconds(200)) {
                last = (try? await stack.send(.GET, "/api/v1/runs/\(runID)", token: token).json) ?? [:]
                return ["success", "failed", "cancelled"].contains(last["status"] as? String ?? "")
            }
            #expect(ended, "run \(runID) did not end: \(last)")
            return last
        }

        /// 200,000 rows into another database in each load mode, checked by count and an md5 over the ordered rows;
        /// upsert twice is idempotent; a type clash fails the run and leaves the target as it was.
        @Test func loadsInEveryModeAreWholeAndAtomic() async throws {
            // Waiting on runs polls the gateway faster than the tests' usual per-user limit allows.
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let (sourceID, source) = try await customerConnection(stack, token: engineer.access)
                let (targetID, target) = try await customerConnection(stack, token: engineer.access)
                try await execute("""
                    CREATE TABLE public.orders AS SELECT n::bigint AS id, 'item ' || n AS name, (n % 1000) * 1.5 AS amount,
                        timestamptz '2025-10-01 00:00:00+00' + n * interval '1 second' AS created_at
                    FROM generate_series(1, 200000) AS n
                    """, in: source)
                try await execute("ALTER TABLE public.orders ADD PRIMARY KEY (id)", in: source)
                let digest: PostgresQuery = "SELECT count(*)::text || ':' || md5(string_agg(o::text, ',' ORDER BY id)) AS value FROM public.orders o"
                let expected = try await value(digest, in: source)
                let project = try await stack.project()
                func pipeline(_ name: String, mode: String, table: String) async throws -> String {
                    let created = try await stack.pipeline(in: project, token: engineer.access, name: name, source: sourceID, target: targetID) {
                        $0["transformations"] = []
                        $0["targets"] = [["id": "dst", "type": "postgresql", "connection_id": targetID,
                                          "config": ["table": table, "mode": mode, "key": ["id"], "create_table": true]]]
                    }
                    let id = try #require(created.json["id"] as? String, "\(created.status)")
                    #expect(try await stack.send(.POST, "/api/v1/pipelines/\(id)/deploy", token: engineer.access).status == 200)
                    return id
                }
                for mode in ["append", "replace", "upsert"] {
                    let id = try await pipeline("copy \(mode)", mode: mode, table: "public.orders_\(mode)")
                    let ran = try await run(id, stack, token: engineer.access)
                    #expect(ran["status"] as? String == "success", "\(ran)")
                    #expect(ran["rows_processed"] as? Int == 200_000)
                    #expect(ran["compiled_sql"] as? String == #"SELECT * FROM "public"."orders""#)
                    let copied = try await value(PostgresQuery(unsafeSQL: """
                        SELECT count(*)::text || ':' || md5(string_agg(o::text, ',' ORDER BY id)) AS value FROM public.orders_\(mode) o
                        """), in: target)
                    #expect(copied == expected, "\(mode)")
                    if mode != "append" {
                        // Again: replace swaps in the same rows, upsert changes nothing.
                        #expect(try await run(id, stack, token: engineer.access)["status"] as? String == "success")
                        #expect(try await value(PostgresQuery(unsafeSQL: """
                            SELECT count(*)::text || ':' || md5(string_agg(o::text, ',' ORDER BY id)) AS value FROM public.orders_\(mode) o
                            """), in: target) == expected)
                    }
                }
                let stages = try await value("SELECT count(*)::text AS value FROM pg_tables WHERE tablename LIKE '\\_platform\\_stage%'", in: target)
                #expect(stages == "0")
                // A stage a dead runner left for a run that has ended is swept by the next load beside it.
                try await execute("CREATE TABLE public._platform_stage_run_999999999 (id bigint)", in: target)
                let ledger = try await value("SELECT count(*)::text AS value FROM public._platform_loads", in: target)
                #expect(ledger == "5")

                // A column type clash: the load fails whole, the target keeps its rows.
                try await execute("CREATE TABLE public.clash (id bigint, name integer, amount numeric, created_at timestamptz)", in: target)
                try await execute("INSERT INTO public.clash VALUES (1, 1, 1, now())", in: target)
                let clash = try await pipeline("clash", mode: "append", table: "public.clash")
                let failed = try await run(clash, stack, token: engineer.access)
                #expect(failed["status"] as? String == "failed")
                let error = try #require(failed["error"] as? [String: Any])
                #expect(error["code"] as? String == "PIPELINE_EXECUTION_ERROR" && (error["message"] as? String ?? "").contains("integer"), "\(error)")
                #expect(try await value("SELECT count(*)::text AS value FROM public.clash", in: target) == "1")
                #expect(try await value("SELECT to_regclass('public._platform_stage_run_999999999')::text AS value", in: target) == nil)
                #expect(try await value("SELECT count(*)::text AS value FROM pg_tables WHERE tablename LIKE '\\_platform\\_stage%'", in: target) == "0")
            }
        }

        /// `replace` puts a new table in place of a plain one (keeping its grants and index names), and inserts into one
        /// that others depend on (a view here), which a new table would leave behind.
        @Test func replaceSwapsPlainTablesAndInsertsIntoDependedOnOnes() async throws {
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let (sourceID, source) = try await customerConnection(stack, token: engineer.access)
                let (targetID, target) = try await customerConnection(stack, token: engineer.access)
                try await execute("""
                    CREATE TABLE public.orders AS SELECT n::bigint AS id, 'item ' || n AS name FROM generate_series(1, 1000) AS n
                    """, in: source)
                for table in ["plain", "viewed"] {
                    try await execute(PostgresQuery(unsafeSQL: "CREATE TABLE public.\(table) (id bigint PRIMARY KEY, name text NOT NULL)"), in: target)
                    try await execute(PostgresQuery(unsafeSQL: "INSERT INTO public.\(table) VALUES (-1, 'old')"), in: target)
                }
                try await execute("GRANT SELECT ON public.plain TO PUBLIC", in: target)
                try await execute("CREATE VIEW public.viewed_names AS SELECT name FROM public.viewed", in: target)
                func oid(_ table: String) async throws -> String? {
                    try await value(PostgresQuery(unsafeSQL: "SELECT to_regclass('public.\(table)')::oid::text AS value"), in: target)
                }
                let before = (plain: try await oid("plain"), viewed: try await oid("viewed"))
                let project = try await stack.project()
                for table in ["plain", "viewed"] {
                    let created = try await stack.pipeline(in: project, token: engineer.access, name: "replace \(table)", source: sourceID, target: targetID) {
                        $0["transformations"] = []
                        $0["targets"] = [["id": "dst", "type": "postgresql", "connection_id": targetID, "config": ["table": "public.\(table)", "mode": "replace"]]]
                    }
                    let id = try #require(created.json["id"] as? String)
                    #expect(try await stack.send(.POST, "/api/v1/pipelines/\(id)/deploy", token: engineer.access).status == 200)
                    let ran = try await run(id, stack, token: engineer.access)
                    #expect(ran["status"] as? String == "success", "\(ran)")
                    #expect(try await value(PostgresQuery(unsafeSQL: "SELECT count(*)::text AS value FROM public.\(table) WHERE id > 0"), in: target) == "1000")
                    #expect(try await value(PostgresQuery(unsafeSQL: "SELECT count(*)::text AS value FROM public.\(table) WHERE id < 0"), in: target) == "0")
                }
                // The plain table was swapped: a new table, with the old one's grants, primary key and its name.
                #expect(try await oid("plain") != before.plain)
                #expect(try await value("SELECT (relacl::text LIKE '%=r/%')::text AS value FROM pg_class WHERE oid = 'public.plain'::regclass", in: target) == "true")
                #expect(try await value("SELECT conname::text AS value FROM pg_constraint WHERE conrelid = 'public.plain'::regclass AND contype = 'p'", in: target) == "plain_pkey")
                #expect(try await value("SELECT count(*)::text AS value FROM pg_indexes WHERE tablename = 'plain' AND indexname = 'plain_pkey'", in: target) == "1")
                // The viewed one kept its identity, and its view sees the new rows.
                #expect(try await oid("viewed") == before.viewed)
                #expect(try await value("SELECT count(*)::text AS value FROM public.viewed_names", in: target) == "1000")
                #expect(try await value("SELECT count(*)::text AS value FROM pg_tables WHERE tablename LIKE '\\_platform\\_%' AND tablename <> '_platform_loads'", in: target) == "0")
            }
        }

        /// A whole-table copy split into block ranges over four pairs of connections reading one snapshot: every row
        /// arrives once, through a filter and a derive that work row by row.
        @Test func parallelRangesCopyEveryRowOnce() async throws {
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let (sourceID, source) = try await customerConnection(stack, token: engineer.access)
                let (targetID, target) = try await customerConnection(stack, token: engineer.access)
                try await execute("""
                    CREATE TABLE public.orders AS SELECT n::bigint AS id, 'item ' || n AS name, (n % 1000) * 1.5 AS amount
                    FROM generate_series(1, 600000) AS n
                    """, in: source)
                // Rows changed after the load: they sit in new blocks, past the table's size when it was measured.
                try await execute("UPDATE public.orders SET amount = amount + 1 WHERE id % 100 = 0", in: source)
                let created = try await stack.pipeline(in: try await stack.project(), token: engineer.access, source: sourceID, target: targetID) {
                    $0["transformations"] = [["type": "filter", "condition": "id % 7 <> 0"], ["type": "derive", "column": "double", "expression": "amount * 2"]]
                    $0["targets"] = [["id": "dst", "type": "postgresql", "connection_id": targetID,
                                      "config": ["table": "public.copied", "mode": "replace", "create_table": true, "parallelism": 4]]]
                }
                let id = try #require(created.json["id"] as? String)
                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(id)/deploy", token: engineer.access).status == 200)
                let ran = try await run(id, stack, token: engineer.access)
                #expect(ran["status"] as? String == "success", "\(ran)")
                let logs = try await stack.send(.GET, "/api/v1/runs/\(try #require(ran["id"] as? String))/logs", token: engineer.access)
                #expect(((logs.json["items"] as? [[String: Any]]) ?? []).contains { ($0["message"] as? String) == "copying in 4 block ranges over 4 connections" },
                        "\(String(decoding: logs.body, as: UTF8.self))")
                let digest = "SELECT count(*)::text || ':' || sum(id)::text || ':' || sum(amount * 2)::text AS value FROM public."
                let expected = try await value(PostgresQuery(unsafeSQL: digest + "orders WHERE id % 7 <> 0"), in: source)
                #expect(try await value(PostgresQuery(unsafeSQL: digest.replacingOccurrences(of: "amount * 2", with: "double") + "copied"), in: target) == expected)
                #expect(try await value("SELECT count(DISTINCT id)::text AS value FROM public.copied", in: target) == "514286")
            }
        }

        /// An incremental source moves only rows past the last committed cursor, with run parameters bound into
        /// COPY; a run delivered again after its commit is recognised by the target's ledger and not loaded twice;
        /// a cancelled run leaves the target as it was.
        @Test func incrementalRunsExactlyOnceLoadsAndCancels() async throws {
            // Waiting on runs polls the gateway faster than the tests' usual per-user limit allows.
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "100000"]) { stack in
                let engineer = try await stack.user(.engineer)
                let (sourceID, source) = try await customerConnection(stack, token: engineer.access)
                let (targetID, target) = try await customerConnection(stack, token: engineer.access)
                try await execute("""
                    CREATE TABLE public.orders AS SELECT n::bigint AS id, (n % 10)::numeric AS amount,
                        timestamptz '2025-10-01 00:00:00+00' + n * interval '1 minute' AS created_at
                    FROM generate_series(1, 1000) AS n
                    """, in: source)
                let project = try await stack.project()
                let created = try await stack.pipeline(in: project, token: engineer.access, source: sourceID, target: targetID) {
                    $0["sources"] = [["id": "src", "type": "postgresql", "connection_id": sourceID, "config": ["table": "public.orders"],
                                      "incremental": ["cursor_column": "created_at"]]]
                    $0["transformations"] = [["type": "filter", "condition": "amount >= :min_amount AND created_at < :until"]]
                    $0["targets"] = [["id": "dst", "type": "postgresql", "connection_id": targetID,
                                      "config": ["table": "public.copied", "mode": "append", "create_table": true]]]
                }
                let id = try #require(created.json["id"] as? String)
                #expect(try await stack.send(.POST, "/api/v1/pipelines/\(id)/deploy", token: engineer.access).status == 200)
                let parameters: [String: Any] = ["min_amount": 5, "until": "2030-01-01"]
                let first = try await run(id, stack, token: engineer.access, parameters: parameters)
                #expect(first["status"] as? String == "success" && first["rows_processed"] as? Int == 500, "\(first)")
                #expect((first["compiled_sql"] as? String)?.contains("amount >= $") == true)
                try await execute("""
                    INSERT INTO public.orders SELECT n, 7, timestamptz '2025-12-01 00:00:00+00' + n * interval '1 minute'
                    FROM generate_series(1001, 1010) AS n
                    """, in: source)
                try await execute("INSERT INTO public.orders VALUES (5000, 9, NULL), (5001, 9, NULL)", in: source)
                let second = try await run(id, stack, token: engineer.access, parameters: parameters)
                #expect(second["rows_processed"] as? Int == 10, "\(second)")
                let secondLogs = try await stack.send(.GET, "/api/v1/runs/\(try #require(second["id"] as? String))/logs", token: engineer.access)
                #expect(((secondLogs.json["items"] as? [[String: Any]]) ?? []).contains {
                    $0["level"] as? String == "warning" && ($0["message"] as? String ?? "").hasPrefix("2 source rows have no created_at (NULL)")
                })
                #expect(try await value("SELECT count(*)::text AS value FROM public.copied", in: target) == "510")

                // The second run delivered again, as if its runner had died after committing.
                let runID = try #require(second["id"] as? String)
                let number = try #require(PublicID.run.parse(runID))
                let platform = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 1, logger: TestEnvironment.logger)
                try await withServices([platform]) {
                    try await platform.query("UPDATE pipelines.runs SET status = 'running', lease_until = now() - interval '1 minute' WHERE id = \(number)")
                }
                let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
                try await withServices([redis]) {
                    try await StreamPublisher(redis: redis).publish(JobRequest(jobID: "redelivered:\(runID)", kind: .pipelineRun, runID: runID, pipelineID: id))
                }
                let reran = await waitUntil(timeout: .seconds(30), interval: .milliseconds(200)) {
                    let logs = (try? await stack.send(.GET, "/api/v1/runs/\(runID)/logs", token: engineer.access).json["items"] as? [[String: Any]]) ?? []
                    return logs.contains { ($0["message"] as? String ?? "").contains("not loaded again") }
                }
                #expect(reran)
                #expect(try await stack.send(.GET, "/api/v1/runs/\(runID)", token: engineer.access).json["status"] as? String == "success")
                #expect(try await value("SELECT count(*)::text AS value FROM public.copied", in: target) == "510")

                // A cancel while the run reads 3 million rows: the run ends cancelled, the target keeps its rows.
                try await execute("INSERT INTO public.orders SELECT n, 9, timestamptz '2026-01-01 00:00:00+00' + n * interval '1 second' FROM generate_series(2000, 3002000) AS n", in: source)
                let started = try await stack.send(.POST, "/api/v1/pipelines/\(id)/run", token: engineer.access, json: ["parameters": parameters])
                let big = try #require(started.json["run_id"] as? String)
                let running = await waitUntil(timeout: .seconds(30), interval: .milliseconds(50)) {
                    (try? await stack.send(.GET, "/api/v1/runs/\(big)", token: engineer.access).json["status"] as? String) == "running"
                }
                #expect(running)
                // Progress events count the rows as they reach the target.
                let progressed = await waitUntil(timeout: .seconds(20), interval: .milliseconds(100)) {
                    ((try? await Self.runEvents()) ?? []).contains { event in
                        event.runID == big && event.kind == .progress && event.rowsRead > 0 && event.bytes > 0
                    }
                }
                #expect(progressed)
                #expect(try await stack.send(.POST, "/api/v1/runs/\(big)/cancel", token: engineer.access).status == 200)
                let cancelled = await waitUntil(timeout: .seconds(30), interval: .milliseconds(100)) {
                    (try? await stack.send(.GET, "/api/v1/runs/\(big)", token: engineer.access).json["status"] as? String) == "cancelled"
                }
                #expect(cancelled)
                #expect(try await value("SELECT count(*)::text AS value FROM public.copied", in: target) == "510")
                #expect(try await value("SELECT count(*)::text AS value FROM pg_tables WHERE tablename LIKE '\\_platform\\_stage%'", in: target) == "0")
            }
        }

        /// A compiled plan, run on PostgreSQL with its parameters bound, gives what the same query written by hand
        /// gives: filter, derive, aggregate and cast pushed down into one query, and an incremental cursor.
        @Test func compiledPlansComputeWhatTheHandWrittenQueryDoes() async throws {
            let schema = TestEnvironment.uniqueName("plan")
            let postgres = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 1, logger: TestEnvironment.logger)
            try await withServices([postgres]) {
                let table = try PostgresIdentifier("orders", schema: schema)
                try await postgres.query("CREATE SCHEMA \(try PostgresIdentifier(schema))")
                try await postgres.query("""
                    CREATE TABLE \(table) AS SELECT n AS id, (n % 7 - 2) * 1.25 AS amount,
                        timestamptz '2025-10-01 00:00:00+00' + n * interval '37 minutes' AS created_at
                    FROM generate_series(1, 5000) AS n
                    """)
                let steps: [Transformation] = [
                    .filter(condition: "amount > 0 AND created_at < :end_date"),
                    .derive(column: "day", expression: "date_trunc('day', created_at)"),
                    .aggregate(groupBy: ["day"], aggregations: ["total": "sum(amount)", "orders": "count(*)"]),
                    .cast(columns: ["total": "numeric(14,2)"]),
                ]
                let pipeline = PipelineSpecification(
                    name: "p", description: "", schedule: nil,
                    sources: [Source(id: "s", type: .postgresql, connectionID: 1, config: .init(table: "\(schema).orders"),
                                     incremental: .init(cursorColumn: "created_at"))],
                    transformations: steps.map { TransformationStep($0) },
                    targets: [Target(id: "t", type: .postgresql, connectionID: 1, config: .init(table: "t", mode: .append, key: [], createTable: true))])
                let plan = try PlanCompiler.compile(pipeline, sourceColumns: ["id", "amount", "created_at"], afterCursor: true)
                let values: [CompiledQuery.Binding: String] = [.cursor: "2025-10-02 12:00:00+00", .parameter("end_date"): "2025-10-04"]
                let binds: [any PostgresEncodable] = plan.query.bindings.map { values[$0]! }
                func rows(_ query: PostgresQuery) async throws -> [String] {
                    try await postgres.query(query).map { row in
                        "\(try row.decode("day", as: String.self))|\(try row.decode("orders", as: String.self))|\(try row.decode("total", as: String.self))"
                    }.sorted()
                }
                let compiled = try await rows(PostgresQuery(unsafeSQL: plan.query.sql, binds: binds))
                let byHand = try await rows("""
                    SELECT date_trunc('day', created_at)::text AS day, count(*)::text AS orders, sum(amount)::numeric(14,2)::text AS total
                    FROM \(table) WHERE created_at > '2025-10-02 12:00:00+00' AND amount > 0 AND created_at < '2025-10-04'
                    GROUP BY 1
                    """)
                #expect(compiled.count == 2 && compiled == byHand, "\(compiled) vs \(byHand)")
                try await postgres.query("DROP SCHEMA \(try PostgresIdentifier(schema)) CASCADE")
            }
        }

        /// The latest events of `platform:run-events`.
        static func runEvents() async throws -> [RunEvent] {
            let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            let reply = try await withServices([redis]) {
                try await redis.execute(["XREVRANGE", PlatformStream.runEvents.rawValue, "+", "-", "COUNT", "500"])
            }
            let entries: [StreamEntry] = try (reply.array ?? []).compactMap(StreamCommands.entry)
            return entries.compactMap { try? $0.decode(RunEvent.self) }
        }

        /// The entries of `platform:jobs` whose job matches.
        static func jobEntries(_ matches: (JobRequest) -> Bool) async throws -> [(id: String, job: JobRequest)] {
            let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            return try await withServices([redis]) {
                let reply = try await redis.execute(["XREVRANGE", PlatformStream.jobs.rawValue, "+", "-", "COUNT", "10000"])
                return try (reply.array ?? []).compactMap(StreamCommands.entry).compactMap { entry in
                    let job = try entry.decode(JobRequest.self)
                    return matches(job) ? (entry.id, job) : nil
                }
            }
        }

        /// Whether the group `pipeline-runner` has read and acknowledged all of `entries`.
        static func acknowledged(_ entries: [String]) async throws -> Bool {
            let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            return try await withServices([redis]) {
                let pending = try await redis.execute(["XPENDING", PlatformStream.jobs.rawValue, "pipeline-runner", "-", "+", "10000"])
                let pendingIDs = Set((pending.array ?? []).compactMap { $0.array?.first?.string })
                let groups = try await redis.execute(["XINFO", "GROUPS", PlatformStream.jobs.rawValue])
                var lastDelivered: String?
                for group in groups.array ?? [] {
                    let fields = group.array ?? []
                    var values: [String: String] = [:]
                    for index in stride(from: 0, to: fields.count - 1, by: 2) {
                        if let key = fields[index].string { values[key] = fields[index + 1].string }
                    }
                    if values["name"] == "pipeline-runner" { lastDelivered = values["last-delivered-id"] }
                }
                guard let lastDelivered, let last = StreamID(lastDelivered) else { return false }
                return entries.allSatisfy { entry in !pendingIDs.contains(entry) && (StreamID(entry).map { $0 <= last } ?? false) }
            }
        }
    }
}

/// A Redis stream entry id (`1700000000000-3`), ordered as Redis orders them.
struct StreamID: Comparable {
    var milliseconds: UInt64
    var sequence: UInt64

    init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let milliseconds = UInt64(parts[0]), let sequence = UInt64(parts[1]) else { return nil }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    static func < (lhs: StreamID, rhs: StreamID) -> Bool { (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence) }
}
