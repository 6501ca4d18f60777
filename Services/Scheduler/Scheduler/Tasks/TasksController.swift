import Foundation
import Hummingbird
import Platform
import SharedModels

/// `/api/v1/scheduler/tasks`: tasks, their runs, and running them by hand.
struct TasksController: Sendable {
    let service: TaskService

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post { request, context in
            let body = try await request.decodeJSON(as: TaskRequest.self, context: context)
            return try JSONResponse(TaskResponse(try await service.create(body, createdBy: context.user?.userID)), status: .created)
        }
        group.get { request, _ in
            var filter = TaskFilter()
            if let type = request.uri.queryParameters.get("task_type") {
                guard let value = TaskType(rawValue: type) else {
                    throw APIError.validation(field: "task_type", reason: "must be one of \(TaskType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.taskType = value
            }
            filter.enabled = try request.booleanQuery("enabled")
            if request.uri.queryParameters.get("connection_id") != nil {
                filter.connectionID = Int64(try request.integerQuery("connection_id", default: 0, in: 1...Int(Int64.max)))
            }
            (filter.limit, filter.offset) = try request.pagination()
            let page = try await service.repository.list(filter)
            return try JSONResponse(Page(items: page.items.map { TaskResponse($0) }, total: page.total, limit: filter.limit, offset: filter.offset))
        }
        group.get(":id") { _, context in
            try JSONResponse(TaskResponse(try await service.find(try Self.id(context))))
        }
        group.put(":id") { request, context in
            let body = try await request.decodeJSON(as: TaskRequest.self, context: context)
            return try JSONResponse(TaskResponse(try await service.update(try Self.id(context), body)))
        }
        group.delete(":id") { _, context in
            try await service.delete(try Self.id(context))
            return try JSONResponse(["message": "Task deleted"])
        }
        group.post(":id/run") { request, context in
            let body = try await request.decodeJSONIfPresent(as: RunRequest.self, context: context)
            let run = try await service.runNow(try Self.id(context), parameters: body?.parameters ?? [:])
            return try JSONResponse(RunQueued(run: run, status: run.status.rawValue), status: .accepted)
        }
        group.post(":id/pause") { _, context in
            try JSONResponse(TaskResponse(try await service.setEnabled(try Self.id(context), false)))
        }
        group.post(":id/resume") { _, context in
            try JSONResponse(TaskResponse(try await service.setEnabled(try Self.id(context), true)))
        }
        group.get(":id/runs") { request, context in
            let id = try Self.id(context)
            _ = try await service.find(id)
            var status: RunStatus?
            if let text = request.uri.queryParameters.get("status") {
                guard let value = RunStatus(rawValue: text) else {
                    throw APIError.validation(field: "status", reason: "must be one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                status = value
            }
            let (limit, offset) = try request.pagination(defaultLimit: 20)
            let page = try await service.repository.runs(taskID: id, status: status, limit: limit, offset: offset)
            return try JSONResponse(Page(items: page.items.map(RunResponse.init), total: page.total, limit: limit, offset: offset))
        }
    }

    static func id(_ context: PlatformRequestContext) throws -> Int64 {
        let text = context.parameters.get("id") ?? ""
        guard let id = Int64(text), id > 0 else { throw APIError.notFound("task", id: text) }
        return id
    }

    /// The optional body of a run by hand: parameters for this run only.
    struct RunRequest: Decodable {
        var parameters: [String: JSONValue]?
    }
}

/// The answer to a run queued by hand or by a trigger (`202`): `{run_id, task_id, pipeline_id, status, started_at}`,
/// the shape of `002`'s manual trigger; `started_at` is when the run was queued.
struct RunQueued: Encodable, Sendable {
    var run: TaskRun
    var pipelineID: String?
    /// `queued` for the Scheduler API, `triggered` for triggers (as `002` words it).
    var status: String

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", taskID = "task_id", pipelineID = "pipeline_id", status, startedAt = "started_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(run.publicID, forKey: .runID)
        try container.encode(run.taskID, forKey: .taskID)
        try container.encodeIfPresent(pipelineID, forKey: .pipelineID)
        try container.encode(status, forKey: .status)
        try container.encode(run.createdAt, forKey: .startedAt)
    }
}

/// A task as the API shows it, with its next five fire times.
struct TaskResponse: Encodable, Sendable {
    let task: ScheduledTask
    let nextFireTimes: [Date]

    init(_ task: ScheduledTask, now: Date = Date()) {
        self.task = task
        if task.definition.enabled, let schedule = try? task.definition.schedule() {
            nextFireTimes = schedule.cron.fireTimes(after: now, in: schedule.zone, count: 5)
        } else {
            nextFireTimes = []
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, name, taskType = "task_type", cronSchedule = "cron_schedule", timezone, connectionID = "connection_id"
        case pipelineID = "pipeline_id", parameters, enabled, maxRetries = "max_retries", retryBackoffSeconds = "retry_backoff_seconds"
        case timeoutSeconds = "timeout_seconds", concurrencyPolicy = "concurrency_policy", misfirePolicy = "misfire_policy"
        case nextRunAt = "next_run_at", nextFireTimes = "next_fire_times", deactivatedReason = "deactivated_reason"
        case createdBy = "created_by", createdAt = "created_at", updatedAt = "updated_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let definition = task.definition
        try container.encode(task.id, forKey: .id)
        try container.encode(definition.name, forKey: .name)
        try container.encode(definition.taskType, forKey: .taskType)
        try container.encode(definition.cronSchedule, forKey: .cronSchedule)
        try container.encode(definition.timezone, forKey: .timezone)
        try container.encode(definition.connectionID, forKey: .connectionID)
        try container.encode(definition.pipelineID, forKey: .pipelineID)
        try container.encode(definition.parameters, forKey: .parameters)
        try container.encode(definition.enabled, forKey: .enabled)
        try container.encode(definition.maxRetries, forKey: .maxRetries)
        try container.encode(definition.retryBackoffSeconds, forKey: .retryBackoffSeconds)
        try container.encode(definition.timeoutSeconds, forKey: .timeoutSeconds)
        try container.encode(definition.concurrencyPolicy, forKey: .concurrencyPolicy)
        try container.encode(definition.misfirePolicy, forKey: .misfirePolicy)
        try container.encode(task.nextRunAt, forKey: .nextRunAt)
        try container.encode(nextFireTimes, forKey: .nextFireTimes)
        try container.encode(task.deactivatedReason, forKey: .deactivatedReason)
        try container.encode(task.createdBy, forKey: .createdBy)
        try container.encode(task.createdAt, forKey: .createdAt)
        try container.encode(task.updatedAt, forKey: .updatedAt)
    }
}

/// A run as the API shows it.
struct RunResponse: Encodable, Sendable {
    let run: TaskRun

    init(_ run: TaskRun) {
        self.run = run
    }

    enum CodingKeys: String, CodingKey {
        case id, taskID = "task_id", status, trigger, attempt, scheduledFor = "scheduled_for", startedAt = "started_at"
        case finishedAt = "finished_at", result, error
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(run.publicID, forKey: .id)
        try container.encode(run.taskID, forKey: .taskID)
        try container.encode(run.status, forKey: .status)
        try container.encode(run.trigger, forKey: .trigger)
        try container.encode(run.attempt, forKey: .attempt)
        try container.encode(run.scheduledFor, forKey: .scheduledFor)
        try container.encode(run.startedAt, forKey: .startedAt)
        try container.encode(run.finishedAt, forKey: .finishedAt)
        try container.encode(run.result, forKey: .result)
        try container.encode(run.error, forKey: .error)
    }
}
