import Foundation
import HTTPTypes
import Hummingbird
import Platform
import SharedModels

/// `/api/v1/mvp/triggers` (`002-platform-api.md`, MVP features): pipeline triggers over scheduler tasks.
struct TriggersController: Sendable {
    let triggers: TriggerService

    /// The one route under `/api` that takes no access token: `POST /api/v1/mvp/triggers/{id}/webhook`.
    /// Only a trigger id fits the fourth segment: `manual/webhook` (a manual run of a pipeline called "webhook")
    /// still needs a token.
    static func isWebhook(_ segments: [Substring]) -> Bool {
        segments.count == 6 && segments[0] == "api" && segments[1] == "v1" && segments[2] == "mvp" && segments[3] == "triggers"
            && segments[4].hasPrefix("trigger_") && segments[5] == "webhook"
    }

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post("create") { request, context in
            let body = try await request.decodeJSON(as: CreateTriggerRequest.self, context: context)
            let (task, secret) = try await triggers.create(body, createdBy: context.user?.userID)
            var response = TriggerResponse(task, statistics: nil)
            if let secret {
                response.webhook = .init(url: "/api/v1/mvp/triggers/\(TriggerService.publicID(task.id))/webhook", secret: secret)
            }
            return try JSONResponse(response, status: .created)
        }
        group.post("manual/:pipeline_id") { request, context in
            let pipelineID = context.parameters.decoded("pipeline_id")
            let body = try await request.decodeJSONIfPresent(as: TasksController.RunRequest.self, context: context)
            let run = try await triggers.runManually(pipelineID: pipelineID, parameters: body?.parameters ?? [:], createdBy: context.user?.userID)
            return try JSONResponse(RunQueued(run: run, pipelineID: pipelineID, status: "triggered"), status: .accepted)
        }
        group.post(":id/webhook") { request, context in
            let triggerID = context.parameters.decoded("id")
            let body = try await request.decodeJSONIfPresent(as: TasksController.RunRequest.self, context: context)
            let run = try await triggers.fireWebhook(
                triggerID: triggerID, secret: request.headers[HTTPField.Name("X-Trigger-Secret")!], parameters: body?.parameters ?? [:])
            let task = try await triggers.tasks.find(run.taskID)
            return try JSONResponse(RunQueued(run: run, pipelineID: task.definition.pipelineID, status: "triggered"), status: .accepted)
        }
        group.get { request, _ in
            var filter = TaskFilter()
            filter.triggersOnly = true
            filter.pipelineID = request.uri.queryParameters.get("pipeline_id").map { String($0) }
            (filter.limit, filter.offset) = try request.pagination()
            let page = try await triggers.tasks.repository.list(filter)
            let statistics = try await triggers.tasks.repository.statistics(taskIDs: page.items.map(\.id))
            return try JSONResponse(Page(
                items: page.items.map { TriggerResponse($0, statistics: statistics[$0.id] ?? RunStatistics(finished: 0, succeeded: 0)) },
                total: page.total, limit: filter.limit, offset: filter.offset))
        }
        group.get(":id") { _, context in
            let task = try await trigger(context)
            let statistics = try await triggers.tasks.repository.statistics(taskIDs: [task.id])
            return try JSONResponse(TriggerResponse(task, statistics: statistics[task.id] ?? RunStatistics(finished: 0, succeeded: 0)))
        }
        group.put(":id/pause") { _, context in
            try JSONResponse(TriggerResponse(try await triggers.tasks.setEnabled(try await trigger(context).id, false), statistics: nil))
        }
        group.put(":id/resume") { _, context in
            try JSONResponse(TriggerResponse(try await triggers.tasks.setEnabled(try await trigger(context).id, true), statistics: nil))
        }
        group.delete(":id") { _, context in
            try await triggers.tasks.delete(try await trigger(context).id)
            return try JSONResponse(["message": "Trigger deleted"])
        }
        group.get(":id/history") { request, context in
            let task = try await trigger(context)
            let (limit, offset) = try request.pagination(defaultLimit: 20)
            let page = try await triggers.tasks.repository.runs(taskID: task.id, status: nil, limit: limit, offset: offset)
            return try JSONResponse(Page(items: page.items.map(RunResponse.init), total: page.total, limit: limit, offset: offset))
        }
    }

    /// The task behind `:id`, which must be a trigger (a `pipeline_run` task).
    private func trigger(_ context: PlatformRequestContext) async throws -> ScheduledTask {
        let text = context.parameters.decoded("id")
        guard let task = try? await triggers.tasks.find(try TriggerService.taskID(fromPublic: text)), task.definition.taskType == .pipelineRun else {
            throw APIError.notFound("trigger", id: text)
        }
        return task
    }
}

/// A trigger as `002` shows it, with how its runs went when listed.
struct TriggerResponse: Encodable, Sendable {
    struct Webhook: Encodable, Sendable {
        var url: String
        /// Shown once, at creation; send it as `X-Trigger-Secret`.
        var secret: String
    }

    let task: ScheduledTask
    let statistics: RunStatistics?
    var webhook: Webhook?

    init(_ task: ScheduledTask, statistics: RunStatistics?) {
        self.task = task
        self.statistics = statistics
    }

    enum CodingKeys: String, CodingKey {
        case triggerID = "trigger_id", name, pipelineID = "pipeline_id", triggerType = "trigger_type", status, config
        case nextRun = "next_run", lastRun = "last_run", successRate = "success_rate", runs, createdAt = "created_at", webhook
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let definition = task.definition
        try container.encode(TriggerService.publicID(task.id), forKey: .triggerID)
        try container.encode(definition.name, forKey: .name)
        try container.encode(definition.pipelineID, forKey: .pipelineID)
        try container.encode(definition.triggerType, forKey: .triggerType)
        try container.encode(task.deactivatedReason != nil ? "inactive" : definition.enabled ? "active" : "paused", forKey: .status)
        var config = definition.triggerConfig.filter { $0.key != "secret_sha256" }
        if let cron = definition.cronSchedule {
            config["cron_expression"] = .string(cron)
            config["timezone"] = .string(definition.timezone)
        }
        try container.encode(config, forKey: .config)
        try container.encode(task.nextRunAt, forKey: .nextRun)
        try container.encode(task.createdAt, forKey: .createdAt)
        try container.encodeIfPresent(webhook, forKey: .webhook)
        if let statistics {
            try container.encode(statistics.lastRunAt, forKey: .lastRun)
            try container.encode(statistics.finished, forKey: .runs)
            let rate: Double? = statistics.finished == 0 ? nil : Double(statistics.succeeded) / Double(statistics.finished)
            try container.encode(rate, forKey: .successRate)
        }
    }
}
