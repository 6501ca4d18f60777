import Foundation
import Platform
import PlatformTesting
@testable import Scheduler
import SharedModels
import Testing

extension Integration {
    /// The scheduler's engine against the real PostgreSQL and Redis, each test in a schema of its own.
    @Suite struct SchedulerTests {
        /// A migrated schema with the repository and `replicas` ledgers, each on a pool of its own, as separate
        /// scheduler replicas would have.
        func withScheduler(replicas: Int = 1, _ body: (PostgresTaskRepository, [RunLedger], PostgresClient) async throws -> Void) async throws {
            let schema = TestEnvironment.uniqueName("sched")
            let pools = (0...replicas).map { _ in
                PostgresClient(configuration: try! TestEnvironment.postgres(), maxConnections: 4, logger: TestEnvironment.logger)
            }
            let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            try await withServices(pools + [redis]) {
                try await Migrator(schema: schema, migrations: SchedulerService.migrations(), logger: TestEnvironment.logger).migrate(using: pools[0])
                // Ids of their own, so the jobs of this test are told apart from other tests' in the shared stream.
                for sequence in ["tasks_id_seq", "task_runs_id_seq"] {
                    let name = try PostgresIdentifier(sequence, schema: schema)
                    try await pools[0].query(PostgresQuery(unsafeSQL: "ALTER SEQUENCE \(name.quoted) RESTART WITH \(Int64.random(in: 1_000_000...1_000_000_000_000))"))
                }
                let publisher = StreamPublisher(redis: redis)
                let ledgers = try pools.dropFirst().map {
                    try RunLedger(postgres: $0, schema: schema, publisher: publisher, logger: TestEnvironment.logger)
                }
                try await body(try PostgresTaskRepository(postgres: pools[0], schema: schema), ledgers, pools[0])
                // The jobs of this schema's tasks leave the shared stream with it: pipeline-runner would take them in
                // later, for tasks and pipelines that never existed.
                let tasks = Set(try await pools[0].query("SELECT id FROM \(try PostgresIdentifier("tasks", schema: schema))")
                    .map { Int(try $0.decode("id", as: Int64.self)) })
                let reply = try await redis.execute(["XRANGE", PlatformStream.jobs.rawValue, "-", "+", "COUNT", "1000000"])
                let doomed = try (reply.array ?? []).compactMap(StreamCommands.entry).filter { entry in
                    (try? entry.decode(JobRequest.self).taskID).flatMap { $0 }.map(tasks.contains) ?? false
                }.map(\.id)
                for batch in stride(from: 0, to: doomed.count, by: 500) {
                    try await redis.execute(["XDEL", PlatformStream.jobs.rawValue] + doomed[batch..<min(batch + 500, doomed.count)])
                }
                try await pools[0].query("DROP SCHEMA \(try PostgresIdentifier(schema)) CASCADE")
            }
        }

        func task(_ name: String, cron: String = "* * * * *", change: (inout TaskDefinition) -> Void = { _ in }) -> TaskDefinition {
            var definition = TaskDefinition(name: name, taskType: .pipelineRun, cronSchedule: cron, pipelineID: "pipeline_1")
            change(&definition)
            return definition
        }

        /// The jobs published to `platform:jobs` since `start` for the given tasks.
        func jobs(since start: Date, tasks: Set<Int>) async throws -> [JobRequest] {
            let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            return try await withServices([redis]) {
                let first = "\(Int64(start.timeIntervalSince1970 * 1000) - 1000)-0"
                let reply = try await redis.execute(["XRANGE", PlatformStream.jobs.rawValue, first, "+", "COUNT", "1000000"])
                return try (reply.array ?? []).compactMap(StreamCommands.entry).map { try $0.decode(JobRequest.self) }
                    .filter { $0.taskID.map(tasks.contains) ?? false }
            }
        }

        func runs(_ repository: any TaskRepository, of task: Int64) async throws -> [TaskRun] {
            try await repository.runs(taskID: task, status: nil, limit: 100, offset: 0).items
        }

        /// Two replicas over 500 tasks due in the same minute publish exactly 500 jobs, one per task.
        @Test func twoReplicasFireEachDueTaskExactlyOnce() async throws {
            let start = Date()
            try await withScheduler(replicas: 2) { repository, ledgers, postgres in
                var ids: [Int64] = []
                // Yearly, so a run that crosses a minute boundary cannot find the tasks due a second time.
                for index in 0..<500 {
                    ids.append(try await repository.create(task("due \(index)", cron: "0 0 1 1 *"), nextRunAt: start.addingTimeInterval(-1), createdBy: nil).id)
                }
                // Small batches, so the two replicas interleave over the same rows.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for ledger in ledgers {
                        group.addTask {
                            let engine = SchedulerEngine(ledger: ledger, settings: .init(batchSize: 25), logger: TestEnvironment.logger)
                            try await engine.pass()
                        }
                    }
                    try await group.waitForAll()
                }
                let published = try await jobs(since: start, tasks: Set(ids.map(Int.init)))
                #expect(published.count == 500)
                #expect(Set(published.map(\.jobID)).count == 500)
                #expect(Set(published.compactMap(\.taskID)) == Set(ids.map(Int.init)))
                let counts = try await postgres.query("""
                    SELECT count(*) AS runs, count(DISTINCT task_id) AS tasks, count(*) FILTER (WHERE published_at IS NOT NULL) AS published
                    FROM \(repository.runs)
                    """).first!
                #expect(try counts.decode("runs", as: Int.self) == 500)
                #expect(try counts.decode("tasks", as: Int.self) == 500)
                #expect(try counts.decode("published", as: Int.self) == 500)
                // Every task moved on to a future fire time.
                let stale = try await postgres.query("SELECT count(*) AS n FROM \(repository.tasks) WHERE next_run_at <= \(start)")
                #expect(try stale.first!.decode("n", as: Int.self) == 0)
            }
        }

        /// The same fire claimed again (its next_run_at put back) makes no second run and no second job.
        @Test func aFireIsRecordedOnceUnderItsIdempotencyKey() async throws {
            let start = Date()
            try await withScheduler { repository, ledgers, postgres in
                let fireTime = Date(timeIntervalSince1970: (start.timeIntervalSince1970 / 60).rounded(.down) * 60)
                // A yearly schedule: the fire time is the stored next_run_at itself, whatever the wall clock's minute.
                let created = try await repository.create(task("twice", cron: "0 0 1 1 *"), nextRunAt: fireTime, createdBy: nil)
                let engine = SchedulerEngine(ledger: ledgers[0], settings: .init(), logger: TestEnvironment.logger)
                try await engine.pass()
                try await postgres.query("UPDATE \(repository.tasks) SET next_run_at = \(fireTime) WHERE id = \(created.id)")
                try await engine.pass()
                let runs = try await runs(repository, of: created.id)
                #expect(runs.count == 1)
                #expect(runs.first?.scheduledFor == fireTime)
                #expect(try await jobs(since: start, tasks: [Int(created.id)]).count == 1)
            }
        }

        /// forbid skips a fire while a run is unfinished; replace fails the old run, cancels it and starts anew.
        @Test func concurrencyPoliciesDecideOverUnfinishedRuns() async throws {
            let start = Date()
            try await withScheduler { repository, ledgers, postgres in
                // Yearly schedules: each fire is for the stored next_run_at, so the two claims below are two fires.
                let forbid = try await repository.create(task("forbid", cron: "0 0 1 1 *"), nextRunAt: start.addingTimeInterval(-120), createdBy: nil)
                let replace = try await repository.create(
                    task("replace", cron: "0 0 1 1 *") { $0.concurrencyPolicy = .replace }, nextRunAt: start.addingTimeInterval(-120), createdBy: nil)
                let engine = SchedulerEngine(ledger: ledgers[0], settings: .init(), logger: TestEnvironment.logger)
                try await engine.pass()
                // Both fired once; make them due again while those runs are unfinished.
                try await postgres.query("UPDATE \(repository.tasks) SET next_run_at = \(start.addingTimeInterval(-1))")
                try await engine.pass()

                let forbidRuns = try await runs(repository, of: forbid.id)
                #expect(forbidRuns.map(\.status).sorted { $0.rawValue < $1.rawValue } == [.queued, .skipped])
                #expect(forbidRuns.first { $0.status == .skipped }?.error?.contains("unfinished") == true)

                let replaceRuns = try await runs(repository, of: replace.id)
                #expect(replaceRuns.map(\.status).sorted { $0.rawValue < $1.rawValue } == [.failed, .queued])
                let replaced = try #require(replaceRuns.first { $0.status == .failed })
                let cancelJobs = try await cancelJobs(since: start)
                #expect(cancelJobs.contains { $0.runID == replaced.publicID })
            }
        }

        /// Run events move a run along; a failure is retried after its back-off until max_retries; a run past its
        /// timeout is timed out, cancelled and retried.
        @Test func runEventsRetriesAndTimeouts() async throws {
            let start = Date()
            try await withScheduler { repository, ledgers, postgres in
                let ledger = ledgers[0]
                let engine = SchedulerEngine(ledger: ledger, settings: .init(), logger: TestEnvironment.logger)
                let flaky = try await repository.create(
                    task("flaky", cron: "0 0 1 1 *") { $0.maxRetries = 1; $0.retryBackoffSeconds = 3 }, nextRunAt: nil, createdBy: nil)
                let first = try #require(try await repository.enqueueRun(taskID: flaky.id, scheduledFor: start, trigger: "manual", parameters: [:], dueAt: start))
                try await engine.pass()
                try await ledger.apply(RunEvent(runID: first.publicID, kind: .started))
                #expect(try await runs(repository, of: flaky.id).first?.status == .running)
                try await ledger.apply(RunEvent(runID: first.publicID, kind: .failed, error: "relation does not exist"))

                var history = try await runs(repository, of: flaky.id)
                #expect(history.count == 2)
                let retry = try #require(history.first { $0.attempt == 2 })
                #expect(retry.status == .queued && retry.trigger == "retry")
                #expect(retry.dueAt.timeIntervalSince(start) >= 3)
                #expect(history.first { $0.attempt == 1 }?.error == "relation does not exist")
                // Not before its back-off ...
                try await engine.pass()
                #expect(try await runs(repository, of: flaky.id).first { $0.attempt == 2 }?.publishedAt == nil)
                // ... then published, and its second failure is final.
                let published = await waitUntil(timeout: .seconds(10), interval: .milliseconds(100)) {
                    try? await engine.pass()
                    return (try? await runs(repository, of: flaky.id).first { $0.attempt == 2 }?.publishedAt) != nil
                }
                #expect(published)
                try await ledger.apply(RunEvent(runID: retry.publicID, kind: .failed, error: "again"))
                history = try await runs(repository, of: flaky.id)
                #expect(history.count == 2)
                #expect(history.allSatisfy { $0.status == .failed })
                // A late event of a finished run changes nothing.
                try await ledger.apply(RunEvent(runID: retry.publicID, kind: .completed))
                #expect(try await runs(repository, of: flaky.id).first { $0.attempt == 2 }?.status == .failed)

                // Success records the counts.
                let good = try #require(try await repository.enqueueRun(taskID: flaky.id, scheduledFor: start.addingTimeInterval(1), trigger: "manual", parameters: [:], dueAt: start))
                try await engine.pass()
                try await ledger.apply(RunEvent(runID: good.publicID, kind: .completed, rowsRead: 10, rowsWritten: 9, bytes: 512))
                let done = try #require(try await runs(repository, of: flaky.id).first { $0.id == good.id })
                #expect(done.status == .success)
                #expect(done.result?["rows_written"] == .number(9))

                // Timeout: a published run that never finished.
                let slow = try await repository.create(task("slow", cron: "0 0 1 1 *") { $0.timeoutSeconds = 30; $0.maxRetries = 1 }, nextRunAt: nil, createdBy: nil)
                let stuck = try #require(try await repository.enqueueRun(taskID: slow.id, scheduledFor: start, trigger: "manual", parameters: [:], dueAt: start))
                try await engine.pass()
                try await postgres.query("UPDATE \(repository.runs) SET published_at = published_at - interval '31 seconds' WHERE id = \(stuck.id)")
                #expect(try await ledger.expire(now: Date()) == 1)
                let slowRuns = try await runs(repository, of: slow.id)
                #expect(slowRuns.first { $0.id == stuck.id }?.status == .timedOut)
                #expect(slowRuns.contains { $0.attempt == 2 && $0.status == .queued })
                #expect(try await cancelJobs(since: start).contains { $0.runID == stuck.publicID })
            }
        }

        /// A task created through one replica wakes the sleeping engine of another at once: its own wake-up is
        /// long (a minute), and the task fires within seconds.
        @Test func aChangeOnOneReplicaWakesTheOthers() async throws {
            try await withScheduler { repository, ledgers, _ in
                let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
                var sleepy = SchedulerEngine.Settings()
                sleepy.maxSleep = .seconds(60)
                sleepy.expiryInterval = .seconds(60)
                let other = SchedulerEngine(ledger: ledgers[0], settings: sleepy, logger: TestEnvironment.logger)
                other.databaseReady()
                let follower = ScheduleChanges.follower(waking: other, redis: try TestEnvironment.redis(), logger: TestEnvironment.logger)
                try await withServices([redis, other, follower]) {
                    // Let the other engine find nothing due and fall asleep.
                    try await Task.sleep(for: .milliseconds(500))
                    // This replica has no engine of its own running: only the announcement can wake the other.
                    let thisReplica = TaskService(
                        repository: repository, connections: InMemoryConnectionDirectory(),
                        pipelines: InMemoryPipelineDirectory(["pipeline_1"]),
                        announceChange: { await ScheduleChanges(redis: redis, logger: TestEnvironment.logger).announce() })
                    let created = try await thisReplica.create(
                        TaskRequest(name: "now", taskType: "pipeline_run", cronSchedule: "0 0 1 1 *", pipelineID: "pipeline_1"), createdBy: nil)
                    _ = try await thisReplica.runNow(created.id)
                    // Announced again while waiting: the follower may not have started reading at the first one.
                    let fired = await waitUntil(timeout: .seconds(5), interval: .milliseconds(200)) {
                        if (try? await runs(repository, of: created.id).first?.publishedAt) != nil { return true }
                        await ScheduleChanges(redis: redis, logger: TestEnvironment.logger).announce()
                        return false
                    }
                    #expect(fired)
                }
            }
        }

        /// A connection's deletion disables its tasks with the reason; they stay.
        @Test func deletedConnectionsDeactivateTheirTasks() async throws {
            try await withScheduler { repository, _, _ in
                let analysis = try await repository.create(
                    task("analysis") { $0.taskType = .tableAnalysis; $0.connectionID = 41 }, nextRunAt: Date().addingTimeInterval(60), createdBy: nil)
                let other = try await repository.create(
                    task("other") { $0.taskType = .tableAnalysis; $0.connectionID = 42 }, nextRunAt: Date().addingTimeInterval(60), createdBy: nil)
                #expect(try await repository.deactivate(.connection(41), reason: "connection 41 was deleted") == 1)
                let disabled = try #require(try await repository.find(id: analysis.id))
                #expect(!disabled.definition.enabled && disabled.nextRunAt == nil)
                #expect(disabled.deactivatedReason == "connection 41 was deleted")
                #expect(try await repository.find(id: other.id)?.definition.enabled == true)
            }
        }

        func cancelJobs(since start: Date) async throws -> [JobRequest] {
            let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            return try await withServices([redis]) {
                let first = "\(Int64(start.timeIntervalSince1970 * 1000) - 1000)-0"
                let reply = try await redis.execute(["XRANGE", PlatformStream.jobs.rawValue, first, "+", "COUNT", "1000000"])
                return try (reply.array ?? []).compactMap(StreamCommands.entry).map { try $0.decode(JobRequest.self) }.filter { $0.kind == .cancel }
            }
        }
    }
}

extension Integration {
    /// The Scheduler API through the gateway, with the scheduler's engine and stream workers running.
    @Suite struct SchedulerAPITests {
        /// The jobs of a run, from the whole stream since `since`.
        func jobs(runID: String, since start: Date) async throws -> [JobRequest] {
            let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            return try await withServices([redis]) {
                let first = "\(Int64(start.timeIntervalSince1970 * 1000) - 1000)-0"
                let reply = try await redis.execute(["XRANGE", PlatformStream.jobs.rawValue, first, "+"])
                return try (reply.array ?? []).compactMap(StreamCommands.entry).map { try $0.decode(JobRequest.self) }.filter { $0.runID == runID }
            }
        }

        func publish(_ event: RunEvent) async throws {
            let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            try await withServices([redis]) { _ = try await StreamPublisher(redis: redis).publish(event) }
        }

        @Test func tasksThroughTheGateway() async throws {
            let testStart = Date()
            // Without pipeline-runner, so the jobs stay queued and the test decides how their runs end.
            try await GatewayStack.run(replace: ["PIPELINE_RUNNER": "http://127.0.0.1:1"]) { stack in
                let engineer = try await stack.user(.engineer)
                let analyst = try await stack.user(.analyst)
                let base = "/api/v1/scheduler/tasks"

                // Invalid input is a 422 naming the field.
                let invalid: [([String: Any], String)] = [
                    (["name": "x", "task_type": "pipeline_run", "pipeline_id": "pipeline_1", "cron_schedule": "61 * * * *"], "cron_schedule"),
                    (["name": "x", "task_type": "pipeline_run", "pipeline_id": "pipeline_1", "cron_schedule": "@daily", "timezone": "Mars/Base"], "timezone"),
                    (["name": "x", "task_type": "table_analysis", "connection_id": 999_999_999, "cron_schedule": "@daily"], "connection_id"),
                    (["name": "x", "task_type": "backup", "cron_schedule": "@daily"], "task_type"),
                    (["name": "x", "cron_schedule": "@daily"], "task_type"),
                    (["name": "x", "task_type": "custom_sql", "connection_id": 1, "cron_schedule": "@daily"], "parameters.sql"),
                ]
                for (body, field) in invalid {
                    let reply = try await stack.send(.POST, base, token: engineer.access, json: body)
                    #expect(reply.status == 422, "\(body)")
                    #expect(((reply.json["error"] as? [String: Any])?["details"] as? [String: Any])?["field"] as? String == field, "\(body)")
                }
                #expect(try await stack.send(.POST, base, token: analyst.access, json: ["name": "x"]).status == 403)

                // A task of a real connection; every minute, in a zone of its own.
                var connection = Integration.ConnectionsTests().credentials(try await Integration.ConnectionsTests.customerDatabase())
                connection["name"] = "Scheduled " + TestEnvironment.uniqueName("c")
                let connectionID = try #require(try await stack.send(.POST, "/api/v1/connections/", token: engineer.access, json: connection).json["id"] as? Int)
                let created = try await stack.send(.POST, base, token: engineer.access, json: [
                    "name": "Every minute", "task_type": "table_analysis", "connection_id": connectionID, "cron_schedule": "* * * * *",
                    "timezone": "Europe/Berlin", "max_retries": 1, "retry_backoff_seconds": 1, "concurrency_policy": "allow",
                ])
                #expect(created.status == 201)
                let id = try #require(created.json["id"] as? Int)
                #expect((created.json["next_fire_times"] as? [String])?.count == 5)
                #expect(created.json["next_run_at"] is String)
                #expect(created.json["concurrency_policy"] as? String == "allow")

                // Run now: 202 with the run id, and its job is published at once.
                let started = try await stack.send(.POST, "\(base)/\(id)/run", token: analyst.access)
                #expect(started.status == 202)
                let runID = try #require(started.json["run_id"] as? String)
                let published = await waitUntil(timeout: .seconds(10), interval: .milliseconds(100)) {
                    (try? await jobs(runID: runID, since: testStart).first?.kind) == .tableAnalysis
                }
                #expect(published)
                #expect(try await jobs(runID: runID, since: testStart).first?.connectionID == connectionID)

                // Its failure comes back through platform:run-events and is retried.
                try await publish(RunEvent(runID: runID, kind: .failed, error: "boom"))
                let retried = await waitUntil(timeout: .seconds(10), interval: .milliseconds(100)) {
                    let runs = (try? await stack.send(.GET, "\(base)/\(id)/runs", token: analyst.access).json["items"] as? [[String: Any]]) ?? []
                    return runs.contains { $0["id"] as? String == runID && $0["status"] as? String == "failed" }
                        && runs.contains { $0["attempt"] as? Int == 2 }
                }
                #expect(retried)

                // The schedule fires within the minute.
                let fired = await waitUntil(timeout: .seconds(75), interval: .milliseconds(500)) {
                    let runs = (try? await stack.send(.GET, "\(base)/\(id)/runs", token: analyst.access).json["items"] as? [[String: Any]]) ?? []
                    // Queued, not skipped: the retry still unfinished does not stop it under "allow".
                    return runs.contains { $0["trigger"] as? String == "schedule" && $0["status"] as? String == "queued" }
                }
                #expect(fired)
                let listed = try await stack.send(.GET, "\(base)/\(id)/runs?status=failed&limit=5", token: analyst.access)
                #expect((listed.json["items"] as? [[String: Any]])?.allSatisfy { $0["status"] as? String == "failed" } == true)
                #expect(try await stack.send(.GET, "\(base)/\(id)/runs?status=lost", token: analyst.access).status == 422)

                // Pause and resume.
                let paused = try await stack.send(.POST, "\(base)/\(id)/pause", token: engineer.access)
                #expect(paused.json["enabled"] as? Bool == false)
                #expect(paused.json["next_run_at"] is NSNull)
                let resumed = try await stack.send(.POST, "\(base)/\(id)/resume", token: engineer.access)
                #expect(resumed.json["enabled"] as? Bool == true)
                #expect(resumed.json["next_run_at"] is String)
                let filtered = try await stack.send(.GET, "\(base)?task_type=table_analysis&connection_id=\(connectionID)", token: analyst.access)
                #expect((filtered.json["items"] as? [[String: Any]])?.map { $0["id"] as? Int } == [id])

                // Deleting the connection deactivates the task, which stays.
                #expect(try await stack.send(.DELETE, "/api/v1/connections/\(connectionID)", token: engineer.access).status == 200)
                let deactivated = await waitUntil(timeout: .seconds(10), interval: .milliseconds(100)) {
                    let task = try? await stack.send(.GET, "\(base)/\(id)", token: analyst.access).json
                    return task?["enabled"] as? Bool == false && (task?["deactivated_reason"] as? String)?.contains("deleted") == true
                }
                #expect(deactivated)
                #expect(try await stack.send(.POST, "\(base)/\(id)/resume", token: engineer.access).status == 422)

                #expect(try await stack.send(.DELETE, "\(base)/\(id)", token: engineer.access).status == 200)
                #expect(try await stack.send(.GET, "\(base)/\(id)", token: analyst.access).status == 404)
            }
        }
    }
}

extension Integration {
    /// `/api/v1/mvp/triggers` through the gateway.
    @Suite struct TriggersAPITests {
        @Test func triggersThroughTheGateway() async throws {
            try await GatewayStack.run { stack in
                let engineer = try await stack.user(.engineer)
                let analyst = try await stack.user(.analyst)
                let base = "/api/v1/mvp/triggers"
                // Triggers name a pipeline that exists (the scheduler asks pipeline-runner).
                let pipeline = try #require(try await stack.pipeline(in: try await stack.project(), token: engineer.access).json["id"] as? String)

                let cron = try await stack.send(.POST, "\(base)/create", token: engineer.access, json: [
                    "name": "Daily Sales Trigger", "pipeline_id": pipeline, "trigger_type": "cron", "config": ["cron_expression": "0 2 * * *"], "enabled": true,
                ])
                #expect(cron.status == 201)
                let cronID = try #require(cron.json["trigger_id"] as? String)
                #expect(cronID.hasPrefix("trigger_"))
                #expect(cron.json["status"] as? String == "active")
                #expect(cron.json["next_run"] is String && cron.json["created_at"] is String)
                #expect(try await stack.send(.POST, "\(base)/create", token: engineer.access, json: [
                    "name": "Bad", "pipeline_id": pipeline, "trigger_type": "cron", "config": [:],
                ]).status == 422)
                #expect(try await stack.send(.POST, "\(base)/create", token: engineer.access, json: [
                    "name": "Bad", "pipeline_id": pipeline, "trigger_type": "sometimes",
                ]).status == 422)

                // Manual: 202, "triggered", and the run is on the pipeline's manual trigger.
                let manual = try await stack.send(.POST, "\(base)/manual/\(pipeline)", token: analyst.access, json: ["parameters": ["start_date": "2026-11-01"]])
                #expect(manual.status == 202)
                #expect(manual.json["status"] as? String == "triggered")
                #expect(manual.json["pipeline_id"] as? String == pipeline)
                #expect((manual.json["run_id"] as? String)?.hasPrefix("taskrun_") == true)

                // Webhook: the secret is shown once and is the only way in; no account needed.
                let hook = try await stack.send(.POST, "\(base)/create", token: engineer.access, json: [
                    "name": "On push", "pipeline_id": pipeline, "trigger_type": "webhook",
                ])
                let hookID = try #require(hook.json["trigger_id"] as? String)
                let secret = try #require((hook.json["webhook"] as? [String: Any])?["secret"] as? String)
                let url = try #require((hook.json["webhook"] as? [String: Any])?["url"] as? String)
                #expect(try await stack.send(.POST, url, headers: [("X-Trigger-Secret", "whs_wrong")]).status == 401)
                #expect(try await stack.send(.POST, url).status == 401)
                let fired = try await stack.send(.POST, url, headers: [("X-Trigger-Secret", secret)])
                #expect(fired.status == 202)
                let shown = try await stack.send(.GET, "\(base)/\(hookID)", token: analyst.access)
                #expect(!String(decoding: shown.body, as: UTF8.self).contains(secret))
                #expect(shown.json["webhook"] == nil)

                // File: a new file matching the pattern starts a run with the file in its parameters.
                let file = try await stack.send(.POST, "\(base)/create", token: engineer.access, json: [
                    "name": "On upload", "pipeline_id": pipeline, "trigger_type": "file", "config": ["file_pattern": "incoming/*.csv"],
                ])
                let fileID = try #require(file.json["trigger_id"] as? String)
                let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
                try await withServices([redis]) {
                    let publisher = StreamPublisher(redis: redis)
                    _ = try await publisher.publish(FileEvent(kind: .created, fileID: "file_1", path: "incoming/skip.json", size: 1))
                    _ = try await publisher.publish(FileEvent(kind: .created, fileID: "file_2", path: "incoming/sales.csv", size: 1))
                }
                let fileRun = await waitUntil(timeout: .seconds(10), interval: .milliseconds(100)) {
                    let items = (try? await stack.send(.GET, "\(base)/\(fileID)/history", token: analyst.access).json["items"] as? [[String: Any]]) ?? []
                    return items.count == 1 && items[0]["trigger"] as? String == "file"
                }
                #expect(fileRun)

                // The list: every trigger of the pipeline, with how its runs went.
                let listed = try await stack.send(.GET, "\(base)?pipeline_id=\(pipeline)", token: analyst.access)
                let items = try #require(listed.json["items"] as? [[String: Any]])
                #expect(Set(items.compactMap { $0["trigger_type"] as? String }) == ["cron", "manual", "webhook", "file"])
                #expect(items.allSatisfy { $0.keys.contains("success_rate") && $0.keys.contains("last_run") })

                // Pause, resume, delete.
                #expect(try await stack.send(.PUT, "\(base)/\(cronID)/pause", token: engineer.access).json["status"] as? String == "paused")
                #expect(try await stack.send(.PUT, "\(base)/\(cronID)/resume", token: engineer.access).json["status"] as? String == "active")
                #expect(try await stack.send(.DELETE, "\(base)/\(cronID)", token: engineer.access).status == 200)
                #expect(try await stack.send(.GET, "\(base)/\(cronID)", token: analyst.access).status == 404)
                #expect(try await stack.send(.GET, "\(base)/trigger_x", token: analyst.access).status == 404)
            }
        }
    }
}
