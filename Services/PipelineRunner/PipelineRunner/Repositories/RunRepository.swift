import Foundation
import Platform
import SharedModels

/// Filters of `GET /api/v1/pipelines/{id}/runs`.
struct RunFilter: Sendable, Equatable {
    var pipelineID: Int64
    var status: RunStatus?
    var limit = 20
    var offset = 0
}

/// Storage of runs and their logs. Runs of deleted pipelines are not found.
protocol RunRepository: Sendable {
    /// Records the run of a job once, with its first log line: for a job id already recorded, the run recorded
    /// then and `false`.
    func create(_ run: NewRun, log: String) async throws -> (run: Run, created: Bool)
    /// The run `id`; `nil` for an unknown one or one of a deleted pipeline.
    func find(id: Int64) async throws -> Run?
    /// One page of a pipeline's runs, newest first, and how many match.
    func list(_ filter: RunFilter) async throws -> (items: [Run], total: Int)
    /// Cancels a queued run at once, or asks a running one to stop (a finished run stays as it is): the run
    /// before and after.
    func requestCancel(id: Int64, at: Date, by: String?) async throws -> (before: Run, after: Run)?
    /// Cancels the run the scheduler knows as `schedulerRunID`, as ``requestCancel(id:at:by:)`` does.
    func requestCancel(schedulerRunID: String, at: Date, by: String?) async throws -> (before: Run, after: Run)?
    /// Ends a queued run as failed (its job could not be queued).
    func fail(id: Int64, code: String, message: String, at: Date) async throws -> Run?
    /// One page of a run's log lines, oldest first, and how many there are.
    func logs(runID: Int64, limit: Int, offset: Int) async throws -> (items: [RunLogEntry], total: Int)

    // The engine's side: a runner owns a run through a lease.

    /// Makes `owner` the runner of a queued run, or of a running one whose lease has expired; `nil` when the run
    /// has ended or another runner holds it.
    func claim(id: Int64, owner: String, leaseUntil: Date) async throws -> Run?
    /// Whether `owner` still holds a running run under a lease that has not expired.
    func holds(id: Int64, owner: String) async throws -> Bool
    /// Extends the lease; false when `owner` should stop: the run was taken over, or a cancel was asked for.
    func renew(id: Int64, owner: String, leaseUntil: Date) async throws -> Bool
    /// Records the compiled query and a log line of the owner's run.
    func note(id: Int64, compiledSQL: String?, log: String, level: RunLogEntry.Level) async throws
    /// Ends the owner's run; `nil` when `owner` no longer holds it.
    func finish(id: Int64, owner: String, _ outcome: RunOutcome, at: Date) async throws -> Run?
}

/// Runs in the service's schema.
struct PostgresRunRepository: RunRepository {
    let postgres: PostgresClient
    let tables: PipelineTables

    /// The columns every read of a run selects, in the order ``decode(_:)`` reads them.
    static let columns: PostgresQuery = """
        id, job_id, kind, pipeline_id, pipeline_version, connection_id, task_id, scheduler_run_id, trigger, status, parameters,
        requested_by, queued_at, started_at, finished_at, cancel_requested_at, rows_processed, bytes_processed, extraction_ms,
        transformation_ms, loading_ms, error_code, error, result, compiled_sql
        """

    /// Runs that are visible: their pipeline (if any) is live.
    private var visible: PostgresQuery {
        """
        (r.pipeline_id IS NULL OR EXISTS (SELECT 1 FROM \(tables.pipelines) p JOIN \(tables.projects) j ON j.id = p.project_id
                                           WHERE p.id = r.pipeline_id AND p.deleted_at IS NULL AND j.deleted_at IS NULL))
        """
    }

    func create(_ run: NewRun, log: String) async throws -> (run: Run, created: Bool) {
        try await postgres.withTransaction { connection in
            if let row = try await connection.query("""
                INSERT INTO \(tables.runs) (job_id, kind, pipeline_id, pipeline_version, connection_id, task_id, scheduler_run_id, trigger,
                    parameters, requested_by, queued_at)
                VALUES (\(run.jobID), \(run.kind.rawValue), \(run.pipelineID), \(run.pipelineVersion), \(run.connectionID), \(run.taskID),
                    \(run.schedulerRunID), \(run.trigger), \(PostgresJSON(run.parameters)), \(run.requestedBy), \(run.queuedAt))
                ON CONFLICT (job_id) DO NOTHING RETURNING \(Self.columns)
                """).first {
                let created = try Self.decode(row)
                try await connection.query("INSERT INTO \(tables.runLogs) (run_id, logged_at, level, message) VALUES (\(created.id), \(run.queuedAt), 'info', \(log))")
                return (created, true)
            }
            guard let existing = try await connection.query("SELECT \(Self.columns) FROM \(tables.runs) WHERE job_id = \(run.jobID)").first else {
                // Recorded and removed for good between the two statements (its project was purged).
                throw PostgresError(code: .foreignKeyViolation, reason: "the run's pipeline is gone")
            }
            return (try Self.decode(existing), false)
        }
    }

    func find(id: Int64) async throws -> Run? {
        try await postgres.query("SELECT \(Self.columns) FROM \(tables.runs) r WHERE r.id = \(id) AND \(visible)").map(Self.decode).first
    }

    func list(_ filter: RunFilter) async throws -> (items: [Run], total: Int) {
        let condition: PostgresQuery = "r.pipeline_id = \(filter.pipelineID) AND (\(filter.status?.rawValue)::text IS NULL OR r.status = \(filter.status?.rawValue))"
        let items = try await postgres.query("""
            SELECT \(Self.columns) FROM \(tables.runs) r WHERE \(condition) ORDER BY r.queued_at DESC, r.id DESC LIMIT \(filter.limit) OFFSET \(filter.offset)
            """).map(Self.decode)
        let total = try await postgres.query("SELECT count(*) AS total FROM \(tables.runs) r WHERE \(condition)").first!.decode("total", as: Int.self)
        return (items, total)
    }

    func requestCancel(id: Int64, at: Date, by: String?) async throws -> (before: Run, after: Run)? {
        try await cancel(where: "r.id = \(id) AND \(visible)", at: at, by: by)
    }

    func requestCancel(schedulerRunID: String, at: Date, by: String?) async throws -> (before: Run, after: Run)? {
        try await cancel(where: "r.scheduler_run_id = \(schedulerRunID)", at: at, by: by)
    }

    private func cancel(where condition: PostgresQuery, at: Date, by: String?) async throws -> (before: Run, after: Run)? {
        try await postgres.withTransaction { connection in
            guard let row = try await connection.query("SELECT \(Self.columns) FROM \(tables.runs) r WHERE \(condition) FOR UPDATE").first else {
                return nil
            }
            let run = try Self.decode(row)
            guard !run.status.isFinished, run.cancelRequestedAt == nil else { return (run, run) }
            let who = by.map { " by \($0)" } ?? ""
            let message = run.status == .queued ? "cancelled\(who) before it started" : "cancel requested\(who)"
            try await connection.query("INSERT INTO \(tables.runLogs) (run_id, logged_at, level, message) VALUES (\(run.id), \(at), 'info', \(message))")
            let after = try await connection.query("""
                UPDATE \(tables.runs) SET cancel_requested_at = \(at),
                    status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                    finished_at = CASE WHEN status = 'queued' THEN \(at) ELSE finished_at END
                WHERE id = \(run.id) RETURNING \(Self.columns)
                """).map(Self.decode).first!
            return (run, after)
        }
    }

    func fail(id: Int64, code: String, message: String, at: Date) async throws -> Run? {
        try await postgres.withTransaction { connection in
            guard let row = try await connection.query("""
                UPDATE \(tables.runs) SET status = 'failed', finished_at = \(at), error_code = \(code), error = \(message)
                WHERE id = \(id) AND status = 'queued' RETURNING \(Self.columns)
                """).first else { return nil }
            try await connection.query("INSERT INTO \(tables.runLogs) (run_id, logged_at, level, message) VALUES (\(id), \(at), 'error', \(message))")
            return try Self.decode(row)
        }
    }

    func logs(runID: Int64, limit: Int, offset: Int) async throws -> (items: [RunLogEntry], total: Int) {
        let items = try await postgres.query("""
            SELECT logged_at, level, message FROM \(tables.runLogs) WHERE run_id = \(runID) ORDER BY id LIMIT \(limit) OFFSET \(offset)
            """).map { row in
            RunLogEntry(at: try row.decode("logged_at"), level: RunLogEntry.Level(rawValue: try row.decode("level")) ?? .info,
                        message: try row.decode("message"))
        }
        let total = try await postgres.query("SELECT count(*) AS total FROM \(tables.runLogs) WHERE run_id = \(runID)").first!.decode("total", as: Int.self)
        return (items, total)
    }

    func claim(id: Int64, owner: String, leaseUntil: Date) async throws -> Run? {
        try await postgres.query("""
            UPDATE \(tables.runs) SET status = 'running', owner = \(owner), lease_until = \(leaseUntil), started_at = coalesce(started_at, now())
            WHERE id = \(id) AND cancel_requested_at IS NULL
              AND (status = 'queued' OR (status = 'running' AND (lease_until IS NULL OR lease_until < now())))
            RETURNING \(Self.columns)
            """).map(Self.decode).first
    }

    func holds(id: Int64, owner: String) async throws -> Bool {
        try await postgres.query("""
            SELECT 1 FROM \(tables.runs) WHERE id = \(id) AND owner = \(owner) AND status = 'running' AND lease_until > now()
            """).count == 1
    }

    func renew(id: Int64, owner: String, leaseUntil: Date) async throws -> Bool {
        try await postgres.query("""
            UPDATE \(tables.runs) SET lease_until = \(leaseUntil)
            WHERE id = \(id) AND owner = \(owner) AND status = 'running' AND cancel_requested_at IS NULL RETURNING id
            """).count == 1
    }

    func note(id: Int64, compiledSQL: String?, log: String, level: RunLogEntry.Level) async throws {
        try await postgres.withTransaction { connection in
            if let compiledSQL { try await connection.query("UPDATE \(tables.runs) SET compiled_sql = \(compiledSQL) WHERE id = \(id)") }
            try await connection.query("INSERT INTO \(tables.runLogs) (run_id, level, message) VALUES (\(id), \(level.rawValue), \(log))")
        }
    }

    func finish(id: Int64, owner: String, _ outcome: RunOutcome, at: Date) async throws -> Run? {
        try await postgres.query("""
            UPDATE \(tables.runs) SET status = \(outcome.status.rawValue), finished_at = \(at), lease_until = NULL,
                rows_processed = \(outcome.rowsProcessed), bytes_processed = \(outcome.bytesProcessed),
                extraction_ms = \(outcome.metrics.extractionMS), transformation_ms = \(outcome.metrics.transformationMS),
                loading_ms = \(outcome.metrics.loadingMS), error_code = \(outcome.errorCode), error = \(outcome.error),
                result = \(outcome.result.map(PostgresJSON.init))
            WHERE id = \(id) AND owner = \(owner) AND status = 'running' RETURNING \(Self.columns)
            """).map(Self.decode).first
    }

    /// A run from a row of ``columns``.
    static func decode(_ row: PostgresRow) throws -> Run {
        guard let kind = JobRequest.Kind(rawValue: try row.decode("kind")) else { throw PostgresDecodingError(JobRequest.Kind.self) }
        guard let status = RunStatus(rawValue: try row.decode("status")) else { throw PostgresDecodingError(RunStatus.self) }
        return Run(
            id: try row.decode("id"), jobID: try row.decode("job_id"), kind: kind, pipelineID: try row.decode("pipeline_id"),
            pipelineVersion: try row.decode("pipeline_version"), connectionID: try row.decode("connection_id"),
            taskID: try row.decode("task_id"), schedulerRunID: try row.decode("scheduler_run_id"), trigger: try row.decode("trigger"),
            status: status, parameters: try row.decode("parameters", as: PostgresJSON<[String: JSONValue]>.self).value,
            requestedBy: try row.decode("requested_by"), queuedAt: try row.decode("queued_at"), startedAt: try row.decode("started_at"),
            finishedAt: try row.decode("finished_at"), cancelRequestedAt: try row.decode("cancel_requested_at"),
            rowsProcessed: try row.decode("rows_processed"), bytesProcessed: try row.decode("bytes_processed"),
            metrics: RunMetrics(extractionMS: try row.decode("extraction_ms"), transformationMS: try row.decode("transformation_ms"),
                                loadingMS: try row.decode("loading_ms")),
            errorCode: try row.decode("error_code"), error: try row.decode("error"),
            result: try row.decode("result", as: PostgresJSON<JSONValue>?.self)?.value, compiledSQL: try row.decode("compiled_sql"))
    }
}
