import Foundation
import Platform
import SharedModels

/// Body of pipeline-runner's `PUT /internal/pipelines/{pipeline_id}/schedule`.
struct PipelineScheduleRequest: Decodable, Sendable {
    var name: String
    var cronSchedule: String
    var timezone: String?

    enum CodingKeys: String, CodingKey {
        case name
        case cronSchedule = "cron_schedule"
        case timezone
    }
}

/// What pipeline-runner manages of its pipelines' tasks: each pipeline's one schedule (the cron `pipeline_run` task
/// it created), and pausing or resuming all of a pipeline's runs at once. It owns the pipelines, so they are not
/// looked up again; everything else is validated as for a user's task.
struct PipelineScheduleService: Sendable {
    /// The creator of the managed schedules.
    static let manager = "service:pipeline-runner"

    let tasks: TaskService

    /// Creates or replaces the pipeline's schedule, enabled (which also ends a deactivation, for a pipeline that
    /// is back).
    func putSchedule(pipelineID: String, _ schedule: PipelineScheduleRequest) async throws -> ScheduledTask {
        // A PUT replaces the schedule: without a zone it is UTC, not the zone stored before.
        let request = TaskRequest(
            name: schedule.name, taskType: TaskType.pipelineRun.rawValue, cronSchedule: schedule.cronSchedule,
            timezone: schedule.timezone ?? "UTC", pipelineID: pipelineID, enabled: true)
        if let existing = try await managedSchedules(of: pipelineID).first {
            return try await tasks.update(existing.id, request, checkingPipeline: false)
        }
        return try await tasks.create(request, createdBy: Self.manager, checkingPipeline: false)
    }

    /// Deletes the pipeline's schedule, if it has one; returns how many tasks went.
    func deleteSchedule(pipelineID: String) async throws -> Int {
        var deleted = 0
        for task in try await managedSchedules(of: pipelineID) {
            if try await tasks.repository.delete(id: task.id) { deleted += 1 }
        }
        return deleted
    }

    /// Disables (or enables again) every `pipeline_run` task of the pipeline; returns how many changed. Resuming
    /// validates each task again and leaves those the platform deactivated as they are.
    func setEnabled(pipelineID: String, _ enabled: Bool) async throws -> Int {
        var filter = TaskFilter()
        filter.taskType = .pipelineRun
        filter.pipelineID = pipelineID
        filter.enabled = !enabled
        filter.limit = 500
        let changing = try await tasks.repository.listAll(filter).filter { $0.deactivatedReason == nil }
        for task in changing {
            _ = try await tasks.setEnabled(task.id, enabled, checkingPipeline: false)
        }
        return changing.count
    }

    /// The pipeline's managed schedules, oldest first: one, unless two requests made one at the same time.
    private func managedSchedules(of pipelineID: String) async throws -> [ScheduledTask] {
        var filter = TaskFilter()
        filter.taskType = .pipelineRun
        filter.pipelineID = pipelineID
        filter.triggerType = .cron
        filter.createdBy = Self.manager
        return try await tasks.repository.listAll(filter)
    }
}
