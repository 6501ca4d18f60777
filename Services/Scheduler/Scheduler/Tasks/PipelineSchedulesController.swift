import Foundation
import Hummingbird
import Platform
import SharedModels

/// `/internal/pipelines/{pipeline_id}/...`: pipeline-runner's hold on the schedules of its pipelines. The gateway
/// never proxies these paths; ``InternalCallerMiddleware`` has already verified the bearer token, and only
/// pipeline-runner is served.
struct PipelineSchedulesController: Sendable {
    /// The one service these routes serve.
    static let callers: Set<String> = ["pipeline-runner"]

    let schedules: PipelineScheduleService

    func addRoutes(to router: Router<PlatformRequestContext>) {
        router.put("internal/pipelines/:pipeline_id/schedule") { request, context in
            _ = try context.requireService(in: Self.callers)
            let body = try await request.decodeJSON(as: PipelineScheduleRequest.self, context: context)
            let task = try await schedules.putSchedule(pipelineID: context.parameters.decoded("pipeline_id"), body)
            return try JSONResponse(PipelineScheduleResponse(task: task))
        }
        router.delete("internal/pipelines/:pipeline_id/schedule") { _, context in
            _ = try context.requireService(in: Self.callers)
            return try JSONResponse(["deleted": try await schedules.deleteSchedule(pipelineID: context.parameters.decoded("pipeline_id"))])
        }
        router.post("internal/pipelines/:pipeline_id/pause") { _, context in
            _ = try context.requireService(in: Self.callers)
            return try JSONResponse(["tasks": try await schedules.setEnabled(pipelineID: context.parameters.decoded("pipeline_id"), false)])
        }
        router.post("internal/pipelines/:pipeline_id/resume") { _, context in
            _ = try context.requireService(in: Self.callers)
            return try JSONResponse(["tasks": try await schedules.setEnabled(pipelineID: context.parameters.decoded("pipeline_id"), true)])
        }
    }
}

/// The answer to a schedule's `PUT`: `{task_id, enabled, cron_schedule, next_run_at}`, `next_run_at` null when
/// nothing is due.
struct PipelineScheduleResponse: Encodable, Sendable {
    let task: ScheduledTask

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", enabled, cronSchedule = "cron_schedule", nextRunAt = "next_run_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(task.id, forKey: .taskID)
        try container.encode(task.definition.enabled, forKey: .enabled)
        try container.encode(task.definition.cronSchedule, forKey: .cronSchedule)
        try container.encode(task.nextRunAt, forKey: .nextRunAt)
    }
}
