import Foundation
import Platform
import SharedModels

/// Filters of `GET /api/v1/scheduler/tasks`.
struct TaskFilter: Sendable, Equatable {
    var taskType: TaskType?
    var enabled: Bool?
    var connectionID: Int64?
    var pipelineID: String?
    var triggersOnly = false
    var triggerType: TriggerType?
    /// Who created the task (`service:pipeline-runner` for the schedules it manages).
    var createdBy: String?
    var limit = 50
    var offset = 0
}

/// What a task depends on, whose deletion deactivates it.
enum TaskOwner: Sendable, Equatable, CustomStringConvertible {
    case connection(Int64)
    case pipeline(String)

    /// `connection` or `pipeline`.
    var kind: String {
        switch self {
        case .connection: "connection"
        case .pipeline: "pipeline"
        }
    }

    /// The owner's id as text.
    var id: String {
        switch self {
        case .connection(let id): String(id)
        case .pipeline(let id): id
        }
    }

    /// `connection 7`, `pipeline pipeline_3`.
    var description: String { "\(kind) \(id)" }

    /// Whether `task` depends on this owner.
    func owns(_ task: TaskDefinition) -> Bool {
        switch self {
        case .connection(let id): task.connectionID == id
        case .pipeline(let id): task.pipelineID == id
        }
    }
}

/// One run of a task.
struct TaskRun: Sendable, Equatable {
    var id: Int64
    var taskID: Int64
    var scheduledFor: Date
    var attempt: Int
    var trigger: String
    var status: RunStatus
    var dueAt: Date
    var publishedAt: Date? = nil
    var startedAt: Date? = nil
    var finishedAt: Date? = nil
    var result: [String: JSONValue]? = nil
    var error: String? = nil
    var parameters: [String: JSONValue]
    var createdAt: Date

    /// The run's public id (`taskrun_12`), also the `run_id` of its job.
    var publicID: String { "taskrun_\(id)" }

    /// The id of a run from its public id; `nil` for ids that are not the scheduler's.
    static func id(fromPublic text: String) -> Int64? {
        guard text.hasPrefix("taskrun_") else { return nil }
        return Int64(text.dropFirst("taskrun_".count)).flatMap { $0 > 0 ? $0 : nil }
    }
}

/// Storage of tasks and their run history, as the API and the triggers use it (the engine's own reads and
/// writes are ``RunLedger``'s).
protocol TaskRepository: Sendable {
    func create(_ task: TaskDefinition, nextRunAt: Date?, createdBy: String?) async throws -> ScheduledTask
    func find(id: Int64) async throws -> ScheduledTask?
    func list(_ filter: TaskFilter) async throws -> (items: [ScheduledTask], total: Int)
    /// Replaces the definition; enabling a task clears the reason the platform disabled it.
    func update(id: Int64, _ task: TaskDefinition, nextRunAt: Date?) async throws -> ScheduledTask?
    func delete(id: Int64) async throws -> Bool
    /// Disables the tasks of a deleted connection or pipeline, saying why; returns how many.
    func deactivate(_ owner: TaskOwner, reason: String) async throws -> Int
    /// Queues a run to be published at `dueAt` (a manual run, a file or webhook trigger); `nil` when a file
    /// trigger already has a run for that file.
    func enqueueRun(taskID: Int64, scheduledFor: Date, trigger: String, parameters: [String: JSONValue], dueAt: Date) async throws -> TaskRun?
    func runs(taskID: Int64, status: RunStatus?, limit: Int, offset: Int) async throws -> (items: [TaskRun], total: Int)
    func statistics(taskIDs: [Int64]) async throws -> [Int64: RunStatistics]
}

extension TaskRepository {
    /// Every task matching `filter`, read page by page (`filter.limit` is the page size; its offset is ignored).
    func listAll(_ filter: TaskFilter) async throws -> [ScheduledTask] {
        var filter = filter
        filter.offset = 0
        var all: [ScheduledTask] = []
        while true {
            let page = try await list(filter).items
            all += page
            if page.count < filter.limit { return all }
            filter.offset += filter.limit
        }
    }
}

/// Tasks and their run history in the scheduler's schema.
struct PostgresTaskRepository: TaskRepository {
    let postgres: PostgresClient
    let tasks: PostgresIdentifier
    let runs: PostgresIdentifier

    init(postgres: PostgresClient, schema: String) throws {
        self.postgres = postgres
        self.tasks = try PostgresIdentifier("tasks", schema: schema)
        self.runs = try PostgresIdentifier("task_runs", schema: schema)
    }

    static let taskColumns: PostgresQuery = """
        id, name, task_type, cron_schedule, timezone, connection_id, pipeline_id, parameters, enabled, max_retries,
        retry_backoff_seconds, timeout_seconds, concurrency_policy, misfire_policy, trigger_type, trigger_config, next_run_at,
        deactivated_reason, created_by, created_at, updated_at
        """
    static let runColumns: PostgresQuery = """
        id, task_id, scheduled_for, attempt, trigger, status, due_at, published_at, started_at, finished_at, result, error,
        parameters, created_at
        """

    func create(_ task: TaskDefinition, nextRunAt: Date?, createdBy: String?) async throws -> ScheduledTask {
        try await postgres.query("""
            INSERT INTO \(tasks) (name, task_type, cron_schedule, timezone, connection_id, pipeline_id, parameters, enabled, max_retries,
                retry_backoff_seconds, timeout_seconds, concurrency_policy, misfire_policy, trigger_type, trigger_config, next_run_at, created_by)
            VALUES (\(task.name), \(task.taskType.rawValue), \(task.cronSchedule), \(task.timezone), \(task.connectionID), \(task.pipelineID),
                \(PostgresJSON(task.parameters)), \(task.enabled), \(task.maxRetries), \(task.retryBackoffSeconds), \(task.timeoutSeconds),
                \(task.concurrencyPolicy.rawValue), \(task.misfirePolicy.rawValue), \(task.triggerType.rawValue), \(PostgresJSON(task.triggerConfig)),
                \(nextRunAt), \(createdBy))
            RETURNING \(Self.taskColumns)
            """).map(Self.decodeTask).first!
    }

    func find(id: Int64) async throws -> ScheduledTask? {
        try await postgres.query("SELECT \(Self.taskColumns) FROM \(tasks) WHERE id = \(id)").map(Self.decodeTask).first
    }

    func list(_ filter: TaskFilter) async throws -> (items: [ScheduledTask], total: Int) {
        let condition: PostgresQuery = """
            (\(filter.taskType?.rawValue)::text IS NULL OR task_type = \(filter.taskType?.rawValue))
            AND (\(filter.enabled)::boolean IS NULL OR enabled = \(filter.enabled))
            AND (\(filter.connectionID)::bigint IS NULL OR connection_id = \(filter.connectionID))
            AND (\(filter.pipelineID)::text IS NULL OR pipeline_id = \(filter.pipelineID))
            AND (NOT \(filter.triggersOnly) OR task_type = 'pipeline_run')
            AND (\(filter.triggerType?.rawValue)::text IS NULL OR trigger_type = \(filter.triggerType?.rawValue))
            AND (\(filter.createdBy)::text IS NULL OR created_by = \(filter.createdBy))
            """
        let items = try await postgres.query("""
            SELECT \(Self.taskColumns) FROM \(tasks) WHERE \(condition) ORDER BY id LIMIT \(filter.limit) OFFSET \(filter.offset)
            """).map(Self.decodeTask)
        let total = try await postgres.query("SELECT count(*) AS total FROM \(tasks) WHERE \(condition)").first!.decode("total", as: Int.self)
        return (items, total)
    }

    func update(id: Int64, _ task: TaskDefinition, nextRunAt: Date?) async throws -> ScheduledTask? {
        try await postgres.query("""
            UPDATE \(tasks) SET name = \(task.name), task_type = \(task.taskType.rawValue), cron_schedule = \(task.cronSchedule),
                timezone = \(task.timezone), connection_id = \(task.connectionID), pipeline_id = \(task.pipelineID),
                parameters = \(PostgresJSON(task.parameters)), enabled = \(task.enabled), max_retries = \(task.maxRetries),
                retry_backoff_seconds = \(task.retryBackoffSeconds), timeout_seconds = \(task.timeoutSeconds),
                concurrency_policy = \(task.concurrencyPolicy.rawValue), misfire_policy = \(task.misfirePolicy.rawValue),
                trigger_type = \(task.triggerType.rawValue), trigger_config = \(PostgresJSON(task.triggerConfig)), next_run_at = \(nextRunAt),
                deactivated_reason = CASE WHEN \(task.enabled) THEN NULL ELSE deactivated_reason END, updated_at = now()
            WHERE id = \(id) RETURNING \(Self.taskColumns)
            """).map(Self.decodeTask).first
    }

    func delete(id: Int64) async throws -> Bool {
        try await postgres.query("DELETE FROM \(tasks) WHERE id = \(id) RETURNING id").count == 1
    }

    func deactivate(_ owner: TaskOwner, reason: String) async throws -> Int {
        let owned: PostgresQuery
        switch owner {
        case .connection(let id): owned = "connection_id = \(id)"
        case .pipeline(let id): owned = "pipeline_id = \(id)"
        }
        return try await postgres.query("""
            UPDATE \(tasks) SET enabled = false, next_run_at = NULL, deactivated_reason = \(reason), updated_at = now()
            WHERE \(owned) AND (enabled OR deactivated_reason IS NULL) RETURNING id
            """).count
    }

    func enqueueRun(taskID: Int64, scheduledFor: Date, trigger: String, parameters: [String: JSONValue], dueAt: Date) async throws -> TaskRun? {
        try await postgres.query("""
            INSERT INTO \(runs) (task_id, scheduled_for, attempt, trigger, status, due_at, parameters)
            VALUES (\(taskID), \(scheduledFor), 1, \(trigger), 'queued', \(dueAt), \(PostgresJSON(parameters)))
            ON CONFLICT DO NOTHING
            RETURNING \(Self.runColumns)
            """).map(Self.decodeRun).first
    }

    func runs(taskID: Int64, status: RunStatus?, limit: Int, offset: Int) async throws -> (items: [TaskRun], total: Int) {
        let condition: PostgresQuery = "task_id = \(taskID) AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))"
        let items = try await postgres.query("""
            SELECT \(Self.runColumns) FROM \(runs) WHERE \(condition) ORDER BY scheduled_for DESC, id DESC LIMIT \(limit) OFFSET \(offset)
            """).map(Self.decodeRun)
        let total = try await postgres.query("SELECT count(*) AS total FROM \(runs) WHERE \(condition)").first!.decode("total", as: Int.self)
        return (items, total)
    }

    func statistics(taskIDs: [Int64]) async throws -> [Int64: RunStatistics] {
        guard !taskIDs.isEmpty else { return [:] }
        let rows = try await postgres.query("""
            SELECT task_id, count(*) FILTER (WHERE status IN ('success', 'failed', 'timed_out')) AS finished,
                   count(*) FILTER (WHERE status = 'success') AS succeeded, max(coalesce(started_at, published_at)) AS last_run_at
            FROM \(runs) WHERE task_id = ANY (\(taskIDs.map(String.init))::bigint[]) GROUP BY task_id
            """)
        var statistics: [Int64: RunStatistics] = [:]
        for row in rows {
            statistics[try row.decode("task_id")] = RunStatistics(
                finished: try row.decode("finished"), succeeded: try row.decode("succeeded"), lastRunAt: try row.decode("last_run_at"))
        }
        return statistics
    }

    static func decodeTask(_ row: PostgresRow) throws -> ScheduledTask {
        func value<T: RawRepresentable>(_ column: String, as type: T.Type) throws -> T where T.RawValue == String {
            let raw = try row.decode(column, as: String.self)
            guard let value = T(rawValue: raw) else { throw PostgresDecodingError(T.self) }
            return value
        }
        let definition = TaskDefinition(
            name: try row.decode("name"), taskType: try value("task_type", as: TaskType.self), cronSchedule: try row.decode("cron_schedule"),
            timezone: try row.decode("timezone"), connectionID: try row.decode("connection_id"), pipelineID: try row.decode("pipeline_id"),
            parameters: try row.decode("parameters", as: PostgresJSON<[String: JSONValue]>.self).value, enabled: try row.decode("enabled"),
            maxRetries: try row.decode("max_retries"), retryBackoffSeconds: try row.decode("retry_backoff_seconds"),
            timeoutSeconds: try row.decode("timeout_seconds"), concurrencyPolicy: try value("concurrency_policy", as: ConcurrencyPolicy.self),
            misfirePolicy: try value("misfire_policy", as: MisfirePolicy.self), triggerType: try value("trigger_type", as: TriggerType.self),
            triggerConfig: try row.decode("trigger_config", as: PostgresJSON<[String: JSONValue]>.self).value)
        return ScheduledTask(
            id: try row.decode("id"), definition: definition, nextRunAt: try row.decode("next_run_at"),
            deactivatedReason: try row.decode("deactivated_reason"), createdBy: try row.decode("created_by"),
            createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
    }

    static func decodeRun(_ row: PostgresRow) throws -> TaskRun {
        guard let status = RunStatus(rawValue: try row.decode("status")) else { throw PostgresDecodingError(RunStatus.self) }
        return TaskRun(
            id: try row.decode("id"), taskID: try row.decode("task_id"), scheduledFor: try row.decode("scheduled_for"),
            attempt: try row.decode("attempt"), trigger: try row.decode("trigger"), status: status, dueAt: try row.decode("due_at"),
            publishedAt: try row.decode("published_at"), startedAt: try row.decode("started_at"), finishedAt: try row.decode("finished_at"),
            result: try row.decode("result", as: PostgresJSON<[String: JSONValue]>?.self)?.value, error: try row.decode("error"),
            parameters: try row.decode("parameters", as: PostgresJSON<[String: JSONValue]>.self).value, createdAt: try row.decode("created_at"))
    }
}

/// How a task's runs went (the triggers view).
struct RunStatistics: Sendable, Equatable {
    var finished: Int
    var succeeded: Int
    var lastRunAt: Date?
}

/// Tasks and runs in memory, for unit tests of the task and trigger rules.
actor InMemoryTaskRepository: TaskRepository {
    private var tasks: [Int64: ScheduledTask] = [:]
    private var runList: [TaskRun] = []
    private var nextID: Int64 = 1

    func create(_ task: TaskDefinition, nextRunAt: Date?, createdBy: String?) async throws -> ScheduledTask {
        let now = Date()
        let created = ScheduledTask(id: nextID, definition: task, nextRunAt: nextRunAt, deactivatedReason: nil, createdBy: createdBy,
                                    createdAt: now, updatedAt: now)
        tasks[nextID] = created
        nextID += 1
        return created
    }

    func find(id: Int64) async throws -> ScheduledTask? { tasks[id] }

    func list(_ filter: TaskFilter) async throws -> (items: [ScheduledTask], total: Int) {
        let matching = tasks.values.sorted { $0.id < $1.id }.filter { task in
            let definition = task.definition
            // Apart from the rest, which is already as long an expression as the type checker handles quickly.
            let creator = filter.createdBy.map { $0 == task.createdBy } ?? true
            return creator && (filter.taskType.map { $0 == definition.taskType } ?? true) && (filter.enabled.map { $0 == definition.enabled } ?? true)
                && (filter.connectionID.map { $0 == definition.connectionID } ?? true)
                && (filter.pipelineID.map { $0 == definition.pipelineID } ?? true) && (!filter.triggersOnly || definition.taskType == .pipelineRun)
                && (filter.triggerType.map { $0 == definition.triggerType } ?? true)
        }
        return (Array(matching.dropFirst(filter.offset).prefix(filter.limit)), matching.count)
    }

    func update(id: Int64, _ task: TaskDefinition, nextRunAt: Date?) async throws -> ScheduledTask? {
        guard var stored = tasks[id] else { return nil }
        stored.definition = task
        stored.nextRunAt = nextRunAt
        if task.enabled { stored.deactivatedReason = nil }
        stored.updatedAt = Date()
        tasks[id] = stored
        return stored
    }

    func delete(id: Int64) async throws -> Bool {
        runList.removeAll { $0.taskID == id }
        return tasks.removeValue(forKey: id) != nil
    }

    func deactivate(_ owner: TaskOwner, reason: String) async throws -> Int {
        var count = 0
        for (id, task) in tasks where owner.owns(task.definition) && (task.definition.enabled || task.deactivatedReason == nil) {
            tasks[id]?.definition.enabled = false
            tasks[id]?.nextRunAt = nil
            tasks[id]?.deactivatedReason = reason
            count += 1
        }
        return count
    }

    func enqueueRun(taskID: Int64, scheduledFor: Date, trigger: String, parameters: [String: JSONValue], dueAt: Date) async throws -> TaskRun? {
        if trigger == "file", runList.contains(where: { $0.taskID == taskID && $0.trigger == "file" && $0.parameters["file_id"] == parameters["file_id"] }) {
            return nil
        }
        let run = TaskRun(id: Int64(runList.count + 1), taskID: taskID, scheduledFor: scheduledFor, attempt: 1, trigger: trigger, status: .queued,
                          dueAt: dueAt, parameters: parameters, createdAt: Date())
        runList.append(run)
        return run
    }

    func runs(taskID: Int64, status: RunStatus?, limit: Int, offset: Int) async throws -> (items: [TaskRun], total: Int) {
        let matching = runList.filter { run in run.taskID == taskID && (status.map { run.status == $0 } ?? true) }.reversed()
        return (Array(matching.dropFirst(offset).prefix(limit)), matching.count)
    }

    func statistics(taskIDs: [Int64]) async throws -> [Int64: RunStatistics] {
        var statistics: [Int64: RunStatistics] = [:]
        for id in taskIDs {
            let runs = runList.filter { $0.taskID == id }
            let finished = runs.filter { [.success, .failed, .timedOut].contains($0.status) }
            statistics[id] = RunStatistics(finished: finished.count, succeeded: finished.filter { $0.status == .success }.count,
                                           lastRunAt: runs.compactMap { $0.startedAt ?? $0.publishedAt }.max())
        }
        return statistics
    }
}
