import Foundation
import Platform
import SharedModels

/// The rules of the Scheduler API: definitions validated as a whole, connections and pipelines that exist, and the
/// engine woken whenever what is due may have changed.
struct TaskService: Sendable {
    let repository: any TaskRepository
    let connections: any ConnectionDirectory
    let pipelines: any PipelineDirectory
    /// Called after every change that may bring a fire time closer (wakes the engines of every replica).
    let announceChange: @Sendable () async -> Void

    /// Creates a task; `checkingPipeline: false` trusts the pipeline it names (when pipeline-runner, its owner, asks).
    func create(
        _ request: TaskRequest, triggerType: TriggerType = .cron, triggerConfig: [String: JSONValue] = [:], createdBy: String?,
        checkingPipeline: Bool = true
    ) async throws -> ScheduledTask {
        guard let name = request.name else { throw APIError.validation(field: "name", reason: "is required") }
        guard request.taskType != nil else { throw APIError.validation(field: "task_type", reason: "is required") }
        var definition = try request.applied(to: TaskDefinition(name: name, taskType: .pipelineRun))
        definition.triggerType = triggerType
        definition.triggerConfig = triggerConfig
        try await validate(definition, checkingPipeline: checkingPipeline)
        let task = try await repository.create(definition, nextRunAt: try Self.nextRun(of: definition), createdBy: createdBy)
        await announceChange()
        return task
    }

    func find(_ id: Int64) async throws -> ScheduledTask {
        guard let task = try await repository.find(id: id) else { throw APIError.notFound("task", id: String(id)) }
        return task
    }

    /// Lays a request over a stored task; `checkingPipeline: false` trusts its pipeline, as in `create`.
    func update(_ id: Int64, _ request: TaskRequest, checkingPipeline: Bool = true) async throws -> ScheduledTask {
        let existing = try await find(id)
        let definition = try request.applied(to: existing.definition)
        try await validate(definition, checkingPipeline: checkingPipeline)
        guard let task = try await repository.update(id: id, definition, nextRunAt: try Self.nextRun(of: definition, replacing: existing)) else {
            throw APIError.notFound("task", id: String(id))
        }
        await announceChange()
        return task
    }

    func delete(_ id: Int64) async throws {
        guard try await repository.delete(id: id) else { throw APIError.notFound("task", id: String(id)) }
    }

    /// Stops (or starts again) the task's schedule; a task resumes only if it is still valid (its connection or
    /// pipeline may be gone).
    func setEnabled(_ id: Int64, _ enabled: Bool, checkingPipeline: Bool = true) async throws -> ScheduledTask {
        let existing = try await find(id)
        var definition = existing.definition
        definition.enabled = enabled
        if enabled { try await validate(definition, checkingPipeline: checkingPipeline) }
        guard let task = try await repository.update(id: id, definition, nextRunAt: try Self.nextRun(of: definition, replacing: existing)) else {
            throw APIError.notFound("task", id: String(id))
        }
        await announceChange()
        return task
    }

    /// Queues a run now, whatever the schedule says (a paused task can be run by hand).
    func runNow(_ id: Int64, parameters: [String: JSONValue] = [:], trigger: String = "manual") async throws -> TaskRun {
        let task = try await find(id)
        if let reason = task.deactivatedReason { throw APIError(.conflict, code: .validationError, message: "The task is deactivated: \(reason)") }
        try TaskRules.validateRunParameters(parameters, of: task.definition)
        let now = Date()
        guard let run = try await repository.enqueueRun(taskID: id, scheduledFor: now, trigger: trigger, parameters: parameters, dueAt: now) else {
            throw APIError.alreadyRun
        }
        await announceChange()
        return run
    }

    private func validate(_ definition: TaskDefinition, checkingPipeline: Bool) async throws {
        try TaskRules.validate(definition)
        if let connection = definition.connectionID {
            guard try await connections.connectionExists(connection) else {
                throw APIError.validation(field: "connection_id", reason: "connection \(connection) does not exist")
            }
        }
        if checkingPipeline, definition.taskType == .pipelineRun, let pipeline = definition.pipelineID {
            guard try await pipelines.pipelineExists(pipeline) else {
                throw APIError.validation(field: "pipeline_id", reason: "pipeline \(pipeline) does not exist")
            }
        }
    }

    /// The next fire time after a change. When the schedule is what it was, the stored time stands: a fire that
    /// is due but not yet claimed is not skipped because someone renamed the task.
    static func nextRun(of definition: TaskDefinition, replacing existing: ScheduledTask) throws -> Date? {
        let old = existing.definition
        if let stored = existing.nextRunAt, definition.enabled, old.enabled, definition.cronSchedule == old.cronSchedule,
           definition.timezone == old.timezone {
            return stored
        }
        return try nextRun(of: definition)
    }

    /// The next fire time of an enabled, scheduled definition.
    static func nextRun(of definition: TaskDefinition, after now: Date = Date()) throws -> Date? {
        guard definition.enabled, let schedule = try definition.schedule() else { return nil }
        return schedule.cron.nextFire(after: now, in: schedule.zone)
    }
}

extension APIError {
    /// 409: a file trigger has already run for this file.
    static let alreadyRun = APIError(.conflict, code: .duplicateResource, message: "The trigger already ran for this file")
}
