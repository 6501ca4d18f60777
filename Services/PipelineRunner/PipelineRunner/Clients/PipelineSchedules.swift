import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Platform
import SharedModels
import Synchronization

/// A pipeline's schedule as the scheduler keeps it.
struct ScheduledPipeline: Sendable, Equatable, Decodable {
    var taskID: Int64
    var enabled: Bool
    var cronSchedule: String
    var nextRunAt: Date?

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", enabled, cronSchedule = "cron_schedule", nextRunAt = "next_run_at"
    }
}

/// The scheduler's tasks of pipelines: the schedule task a deploy creates, and pausing every task of a pipeline.
protocol PipelineSchedules: Sendable {
    /// Creates or updates the pipeline's schedule task and enables it. An invalid cron expression throws
    /// ``SpecificationProblems`` at `schedule`.
    func schedule(pipelineID: String, name: String, cron: String) async throws -> ScheduledPipeline
    /// Removes the pipeline's schedule task, if there is one.
    func unschedule(pipelineID: String) async throws
    /// Disables every task of the pipeline; how many changed.
    func pause(pipelineID: String) async throws -> Int
    /// Enables the pipeline's tasks again; how many changed.
    func resume(pipelineID: String) async throws -> Int
}

/// The scheduler's internal routes.
struct RemotePipelineSchedules: PipelineSchedules {
    let caller: ServiceClient

    private struct ScheduleRequest: Encodable, Sendable {
        var name: String
        var cronSchedule: String
        var timezone = "UTC"

        enum CodingKeys: String, CodingKey {
            case name, cronSchedule = "cron_schedule", timezone
        }
    }

    private struct Changed: Decodable {
        var tasks: Int
    }

    func schedule(pipelineID: String, name: String, cron: String) async throws -> ScheduledPipeline {
        let response = try await caller.call(.PUT, "/internal/pipelines/\(pipelineID)/schedule",
                                             body: ScheduleRequest(name: name, cronSchedule: cron))
        if response.status == .unprocessableEntity {
            // The scheduler names its own field; the task's cron expression is the pipeline's schedule.
            let field = caller.field(of: response).map { $0 == "cron_schedule" || $0 == "timezone" ? "schedule" : $0 } ?? "schedule"
            throw SpecificationProblems([SpecificationProblem(path: field, reason: caller.reason(of: response) ?? "is not valid")],
                                        subject: "The deployment")
        }
        return try caller.decode(ScheduledPipeline.self, from: response)
    }

    func unschedule(pipelineID: String) async throws {
        let response = try await caller.call(.DELETE, "/internal/pipelines/\(pipelineID)/schedule")
        guard response.status == .ok || response.status == .noContent else { throw caller.unavailable }
    }

    func pause(pipelineID: String) async throws -> Int {
        try caller.decode(Changed.self, from: try await caller.call(.POST, "/internal/pipelines/\(pipelineID)/pause")).tasks
    }

    func resume(pipelineID: String) async throws -> Int {
        try caller.decode(Changed.self, from: try await caller.call(.POST, "/internal/pipelines/\(pipelineID)/resume")).tasks
    }
}

/// Schedules in memory, for unit tests.
final class InMemoryPipelineSchedules: PipelineSchedules {
    private let state = Mutex<(tasks: [String: ScheduledPipeline], nextID: Int64)>(([:], 1))

    /// The schedule task of a pipeline, if any.
    func task(of pipelineID: String) -> ScheduledPipeline? { state.withLock { $0.tasks[pipelineID] } }

    func schedule(pipelineID: String, name: String, cron: String) async throws -> ScheduledPipeline {
        guard cron.split(separator: " ").count == 5 || cron.hasPrefix("@") else {
            throw SpecificationProblems([SpecificationProblem(path: "schedule", reason: "is not a valid cron expression")], subject: "The deployment")
        }
        return state.withLock { state in
            let id = state.tasks[pipelineID]?.taskID ?? state.nextID
            if state.tasks[pipelineID] == nil { state.nextID += 1 }
            let task = ScheduledPipeline(taskID: id, enabled: true, cronSchedule: cron, nextRunAt: nil)
            state.tasks[pipelineID] = task
            return task
        }
    }

    func unschedule(pipelineID: String) async throws { state.withLock { _ = $0.tasks.removeValue(forKey: pipelineID) } }

    func pause(pipelineID: String) async throws -> Int { setEnabled(pipelineID, false) }

    func resume(pipelineID: String) async throws -> Int { setEnabled(pipelineID, true) }

    private func setEnabled(_ pipelineID: String, _ enabled: Bool) -> Int {
        state.withLock { state in
            guard let task = state.tasks[pipelineID], task.enabled != enabled else { return 0 }
            state.tasks[pipelineID]?.enabled = enabled
            return 1
        }
    }
}

/// Where no service token can be made: deploy checks and schedules answer 503.
struct UnreachableServices: ConnectionCatalog, PipelineSchedules {
    private var unavailable: APIError {
        APIError(.serviceUnavailable, code: .serviceUnavailable, message: "service.token_key is not set: other services cannot be asked")
    }

    func connection(_ id: Int64) async throws -> CatalogConnection? { throw unavailable }
    func table(_ table: String, connection id: Int64) async throws -> InternalTableSchema? { throw unavailable }
    func matching(host: String, port: Int, database: String) async throws -> [Int64] { throw unavailable }
    func credentials(_ id: Int64) async throws -> InternalConnectionCredentials { throw unavailable }
    func schedule(pipelineID: String, name: String, cron: String) async throws -> ScheduledPipeline { throw unavailable }
    func unschedule(pipelineID: String) async throws { throw unavailable }
    func pause(pipelineID: String) async throws -> Int { throw unavailable }
    func resume(pipelineID: String) async throws -> Int { throw unavailable }
}
