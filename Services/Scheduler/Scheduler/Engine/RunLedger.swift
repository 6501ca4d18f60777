import Foundation
import Logging
import Platform
import SharedModels

/// The engine's reads and writes of tasks and runs. Every step is one transaction that locks only the rows it
/// takes (`FOR UPDATE SKIP LOCKED`), so any number of scheduler replicas can run the same steps at once: each
/// row is handled by exactly one of them.
struct RunLedger: Sendable {
    let postgres: PostgresClient
    let tasks: PostgresIdentifier
    let runs: PostgresIdentifier
    let publisher: StreamPublisher
    let logger: Logger

    init(postgres: PostgresClient, schema: String, publisher: StreamPublisher, logger: Logger) throws {
        self.postgres = postgres
        self.tasks = try PostgresIdentifier("tasks", schema: schema)
        self.runs = try PostgresIdentifier("task_runs", schema: schema)
        self.publisher = publisher
        self.logger = logger
    }

    /// Claims up to `limit` due tasks, in one transaction: records a run for each (queued, or skipped with the
    /// reason), fails and cancels the unfinished runs a `replace` task leaves behind, publishes the new runs' jobs
    /// (inserted as published: no second pass over them) and moves `next_run_at` on. Returns how many it claimed.
    ///
    /// A job is out before its run is committed, so a very fast run event can come first; ``apply(_:)`` waits
    /// for the run to appear. Publishing after the commit instead cost a second write of every run (p99 1.25 s
    /// against 0.74-0.97 s in bench/scheduler).
    func fireDue(now: Date, limit: Int, grace: Duration) async throws -> Int {
        try await postgres.withTransaction { connection in
            // NO KEY UPDATE: inserting runs (which reference the task) elsewhere is not blocked by the claim.
            let due = try await connection.query("""
                SELECT t.id, t.cron_schedule, t.timezone, t.next_run_at, t.concurrency_policy, t.misfire_policy, t.task_type,
                       t.connection_id, t.pipeline_id, t.parameters,
                       (SELECT count(*) FROM \(runs) r WHERE r.task_id = t.id AND r.status IN ('queued', 'running')) AS unfinished
                FROM \(tasks) t WHERE t.enabled AND t.next_run_at <= \(now)
                ORDER BY t.next_run_at LIMIT \(limit) FOR NO KEY UPDATE OF t SKIP LOCKED
                """)
            guard due.count > 0 else { return 0 }
            var fired = RunBatch()
            var moved: [(id: Int64, next: Date?)] = []
            var replacing: Set<Int64> = []
            var templates: [Int64: JobTemplate] = [:]
            for row in due {
                let id = try row.decode("id", as: Int64.self)
                guard let template = try? JobTemplate(row), let cronText = try row.decode("cron_schedule", as: String?.self), let cron = try? CronExpression(cronText),
                      let zone = TimeZone(identifier: try row.decode("timezone")),
                      let concurrency = ConcurrencyPolicy(rawValue: try row.decode("concurrency_policy")),
                      let misfire = MisfirePolicy(rawValue: try row.decode("misfire_policy")) else {
                    // Only a hand-edited row gets here: stop it rather than fail every tick.
                    logger.error("a task has an unusable schedule; it is no longer scheduled", metadata: ["task_id": "\(id)"])
                    moved.append((id, nil))
                    continue
                }
                templates[id] = template
                let decision = FireRules.decide(
                    dueAt: try row.decode("next_run_at"), now: now, cron: cron, zone: zone, misfire: misfire, concurrency: concurrency,
                    unfinishedRuns: try row.decode("unfinished"), grace: grace)
                switch decision.action {
                case .start:
                    fired.append(taskID: id, scheduledFor: decision.scheduledFor, status: .queued, error: nil)
                case .startReplacing:
                    replacing.insert(id)
                    fired.append(taskID: id, scheduledFor: decision.scheduledFor, status: .queued, error: nil)
                case .skip(let reason):
                    fired.append(taskID: id, scheduledFor: decision.scheduledFor, status: .skipped, error: reason)
                }
                moved.append((id, decision.nextRunAt))
            }
            let inserted = try await fired.insert(into: runs, trigger: "schedule", now: now, published: true, using: connection)
            var jobs: [JobRequest] = []
            var replaced: [(task: Int64, run: Int64)] = []
            for row in inserted where try row.decode("status", as: String.self) == RunStatus.queued.rawValue {
                let run = try row.decode("id", as: Int64.self), task = try row.decode("task_id", as: Int64.self)
                if let template = templates[task] { jobs.append(try template.job(for: row, now: now)) }
                if replacing.contains(task) { replaced.append((task, run)) }
            }
            // Only once the new run exists does a replace end the old ones (a fire already recorded starts nothing).
            if !replaced.isEmpty {
                let ended = try await connection.query("""
                    UPDATE \(runs) SET status = 'failed', finished_at = \(now), error = 'replaced by a newer run (concurrency_policy replace)'
                    WHERE task_id = ANY (\(replaced.map { String($0.task) })::bigint[]) AND id <> ALL (\(replaced.map { String($0.run) })::bigint[])
                      AND status IN ('queued', 'running')
                    RETURNING id, published_at
                    """)
                try await publishCancels(of: ended, now: now)
            }
            try await connection.query("""
                UPDATE \(tasks) t SET next_run_at = NULLIF(u.next, '')::timestamptz
                FROM unnest(\(moved.map { String($0.id) })::bigint[], \(moved.map { $0.next.map(PostgresTimestamp.format) ?? "" })::text[]) AS u(id, next)
                WHERE t.id = u.id
                """)
            try await publisher.publish(all: jobs)
            return due.count
        }
    }


    /// Publishes up to `limit` queued runs whose time has come (manual runs, trigger runs, retries after their
    /// back-off, and any run a crashed replica left unpublished) to `platform:jobs`, and marks them published in
    /// the same transaction. A crash between the publish and the commit publishes the same job again later, under
    /// the same `job_id`, which the runner treats as the same job. Returns how many it published.
    func dispatch(now: Date, limit: Int) async throws -> Int {
        try await postgres.withTransaction { connection in
            try await publishQueued(where: "r.due_at <= \(now)", now: now, limit: limit, using: connection)
        }
    }

    private func publishQueued(where condition: PostgresQuery, now: Date, limit: Int, using connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query("""
            SELECT r.id, r.task_id, r.scheduled_for, r.attempt, r.parameters AS run_parameters, t.task_type, t.connection_id,
                   t.pipeline_id, t.parameters
            FROM \(runs) r JOIN \(tasks) t ON t.id = r.task_id
            WHERE r.status = 'queued' AND r.published_at IS NULL AND \(condition)
            ORDER BY r.due_at LIMIT \(limit) FOR NO KEY UPDATE OF r SKIP LOCKED
            """)
        guard rows.count > 0 else { return 0 }
        var jobs: [JobRequest] = []
        var unusable: [String] = []
        for row in rows {
            let id = try row.decode("id", as: Int64.self)
            do {
                jobs.append(try JobTemplate(row).job(for: row, now: now))
            } catch {
                // Only a hand-edited row gets here: fail that run rather than every pass.
                logger.error("a queued run cannot become a job; it is failed", metadata: ["run_id": "\(id)", "error": "\(error)"])
                unusable.append(String(id))
            }
        }
        if !unusable.isEmpty {
            try await connection.query("""
                UPDATE \(runs) SET status = 'failed', finished_at = \(now), error = 'the task cannot be turned into a job'
                WHERE id = ANY (\(unusable)::bigint[])
                """)
        }
        try await publisher.publish(all: jobs)
        let ids = jobs.compactMap { TaskRun.id(fromPublic: $0.runID) }.map(String.init)
        try await connection.query("UPDATE \(runs) SET published_at = \(now) WHERE id = ANY (\(ids)::bigint[])")
        return rows.count
    }

    /// Marks runs that outlived their task's `timeout_seconds` as `timed_out`, publishes a cancel for each, and
    /// queues the retries they have left. Returns how many timed out.
    func expire(now: Date) async throws -> Int {
        try await postgres.withTransaction { connection in
            let expired = try await connection.query("""
                UPDATE \(runs) r SET status = 'timed_out', finished_at = \(now),
                    error = 'exceeded timeout_seconds (' || t.timeout_seconds || ')'
                FROM \(tasks) t
                WHERE t.id = r.task_id AND r.status IN ('queued', 'running') AND r.published_at IS NOT NULL
                  AND coalesce(r.started_at, r.published_at) + make_interval(secs => t.timeout_seconds) <= \(now)
                RETURNING r.id, r.published_at, r.task_id, r.scheduled_for, r.attempt, t.max_retries, t.retry_backoff_seconds
                """)
            guard expired.count > 0 else { return 0 }
            try await publishCancels(of: expired, now: now)
            try await queueRetries(after: expired, now: now, using: connection)
            return expired.count
        }
    }

    /// Applies a run event of pipeline-runner to the run it is about (named in `scheduler_run_id` when the event's
    /// own run id is pipeline-runner's); events of runs that are not the scheduler's, or that arrive after the run
    /// finished (a late event of a timed-out run), change nothing.
    func apply(_ event: RunEvent) async throws {
        let runID = event.schedulerRunID ?? event.runID
        guard let id = TaskRun.id(fromPublic: runID) else { return }
        var waited = Duration.zero
        while try await !record(event, run: id) {
            // Nothing changed: the run has finished (a late event), or is not committed yet (a job leaves inside the
            // transaction that records its run). Only the second is worth waiting for.
            guard try await postgres.query("SELECT 1 FROM \(runs) WHERE id = \(id)").count == 0 else { return }
            // Not committed yet, or never (the claim rolled back): throwing leaves the event to be delivered again.
            guard waited < .seconds(3) else { throw RunNotFound(runID: runID) }
            try await Task.sleep(for: .milliseconds(100))
            waited += .milliseconds(100)
        }
    }

    /// Writes the event into its run; false when no run in a state it applies to was there.
    private func record(_ event: RunEvent, run id: Int64) async throws -> Bool {
        let at = event.occurredAt
        switch event.kind {
        case .started, .progress:
            return try await postgres.query("""
                UPDATE \(runs) SET status = 'running', started_at = coalesce(started_at, \(at)) WHERE id = \(id) AND status = 'queued'
                RETURNING id
                """).count > 0
        case .completed:
            var fields: [String: JSONValue] = [
                "rows_read": .number(Double(event.rowsRead)), "rows_written": .number(Double(event.rowsWritten)),
                "bytes": .number(Double(event.bytes)), "stage_timings_ms": .object(event.stageTimingsMS.mapValues(JSONValue.number)),
            ]
            // pipeline-runner's own run, whose details hold what an analysis or a query found.
            if event.schedulerRunID != nil { fields["run_id"] = .string(event.runID) }
            let result = PostgresJSON(fields)
            return try await postgres.query("""
                UPDATE \(runs) SET status = 'success', started_at = coalesce(started_at, \(at)), finished_at = \(at), result = \(result)
                WHERE id = \(id) AND status IN ('queued', 'running') RETURNING id
                """).count > 0
        case .failed, .cancelled:
            // From another service: no NUL (PostgreSQL text refuses it) and bounded.
            let error = String((event.error ?? (event.kind == .cancelled ? "cancelled" : "failed")).filter { $0 != "\u{0}" }.prefix(2000))
            return try await postgres.withTransaction { connection in
                let failed = try await connection.query("""
                    UPDATE \(runs) r SET status = 'failed', started_at = coalesce(r.started_at, \(at)), finished_at = \(at), error = \(error)
                    FROM \(tasks) t WHERE r.id = \(id) AND t.id = r.task_id AND r.status IN ('queued', 'running')
                    RETURNING r.id, r.task_id, r.scheduled_for, r.attempt, t.max_retries, t.retry_backoff_seconds
                    """)
                try await queueRetries(after: failed, now: at, using: connection)
                return failed.count > 0
            }
        }
    }

    /// The earliest time something is due: a task's next fire or a queued run's publish time.
    func nextDue() async throws -> Date? {
        try await postgres.query("""
            SELECT least((SELECT min(next_run_at) FROM \(tasks) WHERE enabled),
                         (SELECT min(due_at) FROM \(runs) WHERE status = 'queued' AND published_at IS NULL)) AS due
            """).first?.decode("due", as: Date?.self)
    }

    /// The idempotency key of a job: the task, the fire time it is for (in microseconds, as stored, so two runs by
    /// hand in one millisecond stay two jobs), and the attempt.
    static func jobID(taskID: Int64, scheduledFor: Date, attempt: Int) -> String {
        "task_\(taskID):\(Int64((scheduledFor.timeIntervalSince1970 * 1_000_000).rounded())):\(attempt)"
    }

    private func queueRetries(after failed: PostgresRows, now: Date, using connection: PostgresConnection) async throws {
        guard failed.count > 0 else { return }
        var retries = RunBatch()
        for row in failed {
            let attempt = try row.decode("attempt", as: Int.self)
            guard let delay = FireRules.retryDelay(
                afterAttempt: attempt, maxRetries: try row.decode("max_retries"), backoffSeconds: try row.decode("retry_backoff_seconds")) else { continue }
            retries.append(taskID: try row.decode("task_id"), scheduledFor: try row.decode("scheduled_for"), status: .queued, error: nil,
                           attempt: attempt + 1, dueAt: now.addingTimeInterval(delay.secondsValue))
        }
        _ = try await retries.insert(into: runs, trigger: "retry", now: now, published: false, using: connection)
    }

    private func publishCancels(of rows: PostgresRows, now: Date) async throws {
        var cancels: [JobRequest] = []
        for row in rows where try row.decode("published_at", as: Date?.self) != nil {
            let runID = "taskrun_\(try row.decode("id", as: Int64.self))"
            cancels.append(JobRequest(jobID: "cancel:\(runID)", kind: .cancel, runID: runID, requestedAt: now))
        }
        try await publisher.publish(all: cancels)
    }
}

/// Runs to insert in one statement. Inserting an idempotency key that exists already does nothing.
private struct RunBatch {
    private var taskIDs: [String] = []
    private var scheduledFor: [String] = []
    private var attempts: [String] = []
    private var statuses: [String] = []
    private var errors: [String] = []
    private var dueAt: [String] = []

    mutating func append(taskID: Int64, scheduledFor time: Date, status: RunStatus, error: String?, attempt: Int = 1, dueAt due: Date? = nil) {
        taskIDs.append(String(taskID))
        scheduledFor.append(PostgresTimestamp.format(time))
        attempts.append(String(attempt))
        statuses.append(status.rawValue)
        errors.append(error ?? "")
        dueAt.append(due.map(PostgresTimestamp.format) ?? "")
    }

    /// Inserts the runs; with `published`, the queued ones are marked published now (their jobs go out in the same
    /// transaction). Returns the rows inserted (not those whose key existed).
    func insert(into runs: PostgresIdentifier, trigger: String, now: Date, published: Bool, using connection: PostgresConnection) async throws -> PostgresRows {
        try await connection.query("""
            INSERT INTO \(runs) (task_id, scheduled_for, attempt, trigger, status, due_at, published_at, finished_at, error)
            SELECT u.task_id, u.scheduled_for, u.attempt, \(trigger), u.status, coalesce(NULLIF(u.due_at, '')::timestamptz, \(now)),
                   CASE WHEN \(published) AND u.status = 'queued' THEN \(now)::timestamptz END,
                   CASE WHEN u.status = 'skipped' THEN \(now)::timestamptz END, NULLIF(u.error, '')
            FROM unnest(\(taskIDs)::bigint[], \(scheduledFor)::timestamptz[], \(attempts)::int[], \(statuses)::text[], \(errors)::text[],
                        \(dueAt)::text[]) AS u(task_id, scheduled_for, attempt, status, error, due_at)
            ON CONFLICT (task_id, scheduled_for, attempt) DO NOTHING
            RETURNING id, task_id, scheduled_for, attempt, status, parameters AS run_parameters
            """)
    }
}

/// What a task's jobs are made of: its type, connection, pipeline and parameters.
private struct JobTemplate {
    let type: TaskType
    let connectionID: Int64?
    let pipelineID: String?
    let parameters: [String: JSONValue]

    /// From a row with the task's `task_type`, `connection_id`, `pipeline_id` and `parameters`.
    init(_ row: PostgresRow) throws {
        guard let type = TaskType(rawValue: try row.decode("task_type")) else { throw PostgresDecodingError(TaskType.self) }
        self.type = type
        self.connectionID = try row.decode("connection_id")
        self.pipelineID = try row.decode("pipeline_id")
        self.parameters = try row.decode("parameters", as: PostgresJSON<[String: JSONValue]>.self).value
    }

    /// The job of a run, from a row with its `id`, `task_id`, `scheduled_for`, `attempt` and `run_parameters`
    /// (which override the task's).
    func job(for run: PostgresRow, now: Date) throws -> JobRequest {
        let taskID = try run.decode("task_id", as: Int64.self)
        var parameters = self.parameters
        parameters.merge(try run.decode("run_parameters", as: PostgresJSON<[String: JSONValue]>.self).value) { _, own in own }
        return JobRequest(
            jobID: RunLedger.jobID(taskID: taskID, scheduledFor: try run.decode("scheduled_for"), attempt: try run.decode("attempt")),
            kind: type.jobKind, runID: "taskrun_\(try run.decode("id", as: Int64.self))", taskID: Int(taskID), pipelineID: pipelineID,
            connectionID: connectionID.map(Int.init), parameters: parameters, requestedAt: now)
    }
}

/// A run event about a run that does not exist (yet): the stream worker delivers it again later.
struct RunNotFound: Error, CustomStringConvertible {
    var runID: String
    var description: String { "no run \(runID) (yet)" }
}
