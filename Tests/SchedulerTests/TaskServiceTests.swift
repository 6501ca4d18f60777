import Foundation
import Platform
@testable import Scheduler
import SharedModels
import Synchronization
import Testing

/// The task and trigger rules over in-memory storage and a known set of connections and pipelines.
@Suite struct TaskServiceTests {
    let repository = InMemoryTaskRepository()
    let connections = InMemoryConnectionDirectory([7])
    let pipelines = InMemoryPipelineDirectory(["pipeline_1", "pipeline_5", "pipeline_6", "pipeline_9"])
    let announcements = Counter()
    var service: TaskService {
        TaskService(repository: repository, connections: connections, pipelines: pipelines, announceChange: { [announcements] in announcements.add() })
    }

    final class Counter: Sendable {
        private let value = Mutex(0)
        func add() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    func request(_ json: String) throws -> TaskRequest {
        try JSONDecoder().decode(TaskRequest.self, from: Data(json.utf8))
    }

    func field(_ body: () async throws -> Any) async -> String? {
        do {
            _ = try await body()
            return nil
        } catch let error as APIError {
            guard case .string(let field)? = error.details?["field"] else { return error.code.rawValue }
            return field
        } catch {
            return "\(error)"
        }
    }

    @Test func createValidatesStoresSchedulesAndAnnounces() async throws {
        let task = try await service.create(try request(#"""
            {"name": "Nightly", "task_type": "table_analysis", "connection_id": 7, "cron_schedule": "0 2 * * *", "timezone": "Europe/Berlin"}
            """#), createdBy: "user_3")
        #expect(task.definition.connectionID == 7 && task.createdBy == "user_3")
        let next = try #require(task.nextRunAt)
        #expect(next > Date() && next.timeIntervalSinceNow <= 86_400)
        #expect(announcements.count == 1)
        #expect(try await repository.find(id: task.id) == task)
    }

    @Test func nothingIsStoredForAnInvalidTask() async throws {
        #expect(await field { try await service.create(try request(#"{"task_type": "pipeline_run"}"#), createdBy: nil) } == "name")
        #expect(await field { try await service.create(try request(#"{"name": "x"}"#), createdBy: nil) } == "task_type")
        #expect(await field {
            try await service.create(try request(#"{"name": "x", "task_type": "table_analysis", "connection_id": 8, "cron_schedule": "@daily"}"#), createdBy: nil)
        } == "connection_id")
        #expect(await field {
            try await service.create(try request(#"{"name": "x", "task_type": "pipeline_run", "pipeline_id": "p", "cron_schedule": "@often"}"#), createdBy: nil)
        } == "cron_schedule")
        #expect(try await repository.list(TaskFilter()).total == 0)
        #expect(announcements.count == 0)
    }

    @Test func updatesMergeAndPausedTasksHaveNoNextRun() async throws {
        let task = try await service.create(try request(#"""
            {"name": "Hourly", "task_type": "pipeline_run", "pipeline_id": "pipeline_1", "cron_schedule": "@hourly", "max_retries": 2}
            """#), createdBy: nil)
        let updated = try await service.update(task.id, try request(#"{"cron_schedule": "*/5 * * * *"}"#))
        #expect(updated.definition.cronSchedule == "*/5 * * * *" && updated.definition.maxRetries == 2)
        let paused = try await service.setEnabled(task.id, false)
        #expect(!paused.definition.enabled && paused.nextRunAt == nil)
        let resumed = try await service.setEnabled(task.id, true)
        #expect(resumed.definition.enabled && resumed.nextRunAt != nil)
        #expect(await field { try await service.update(999, try request("{}")) } == ErrorCode.resourceNotFound.rawValue)
    }

    @Test func aDeactivatedTaskNeitherRunsNorResumesWhileItsConnectionIsGone() async throws {
        let task = try await service.create(try request(#"""
            {"name": "Analysis", "task_type": "table_analysis", "connection_id": 7, "cron_schedule": "@daily"}
            """#), createdBy: nil)
        connections.remove(7)
        #expect(try await repository.deactivate(.connection(7), reason: "connection 7 was deleted") == 1)
        #expect(await field { try await service.runNow(task.id) } == ErrorCode.validationError.rawValue)
        #expect(await field { try await service.setEnabled(task.id, true) } == "connection_id")
        // Back again (restored under the same id): the task can resume, and the reason goes.
        connections.add(7)
        let resumed = try await service.setEnabled(task.id, true)
        #expect(resumed.deactivatedReason == nil && resumed.definition.enabled)
    }

    @Test func pipelineRunTasksNameAPipelineThatExists() async throws {
        #expect(await field {
            try await service.create(try request(#"{"name": "x", "task_type": "pipeline_run", "pipeline_id": "pipeline_404", "cron_schedule": "@daily"}"#), createdBy: nil)
        } == "pipeline_id")
        // The manual trigger's path names the pipeline: a missing one is not found.
        #expect(await field { try await TriggerService(tasks: service).runManually(pipelineID: "pipeline_404", parameters: [:], createdBy: nil) }
            == ErrorCode.resourceNotFound.rawValue)
        #expect(try await repository.list(TaskFilter()).total == 0)
        let task = try await service.create(try request(#"""
            {"name": "Daily", "task_type": "pipeline_run", "pipeline_id": "pipeline_1", "cron_schedule": "@daily"}
            """#), createdBy: nil)
        #expect(task.definition.pipelineID == "pipeline_1" && task.nextRunAt != nil)
        // Deleted: the task stops, and resumes only once the pipeline is back (restored under the same id).
        pipelines.remove("pipeline_1")
        #expect(try await repository.deactivate(.pipeline("pipeline_1"), reason: "pipeline pipeline_1 was deleted") == 1)
        #expect(try await repository.find(id: task.id)?.deactivatedReason == "pipeline pipeline_1 was deleted")
        #expect(await field { try await service.runNow(task.id) } == ErrorCode.validationError.rawValue)
        #expect(await field { try await service.setEnabled(task.id, true) } == "pipeline_id")
        pipelines.add("pipeline_1")
        let resumed = try await service.setEnabled(task.id, true)
        #expect(resumed.deactivatedReason == nil && resumed.definition.enabled)
    }

    @Test func webhookTriggersTakeOnlyTheirSecret() async throws {
        let triggers = TriggerService(tasks: service)
        let body = CreateTriggerRequest(name: "Hook", pipelineID: "pipeline_9", triggerType: "webhook", config: nil, enabled: nil)
        let (task, secret) = try await triggers.create(body, createdBy: nil)
        let known = try #require(secret)
        #expect(task.definition.triggerConfig["secret_sha256"] == .string(TriggerService.digest(known)))
        #expect(!"\(task.definition.triggerConfig)".contains(known))
        let id = TriggerService.publicID(task.id)
        for wrong in [nil, "whs_nope", String(known.dropLast())] {
            #expect(await field { try await triggers.fireWebhook(triggerID: id, secret: wrong, parameters: [:]) } == ErrorCode.authFailed.rawValue)
        }
        #expect(await field { try await triggers.fireWebhook(triggerID: "trigger_999", secret: known, parameters: [:]) } == ErrorCode.authFailed.rawValue)
        let run = try await triggers.fireWebhook(triggerID: id, secret: known, parameters: ["ref": .string("main")])
        #expect(run.trigger == "webhook" && run.parameters["ref"] == .string("main"))
        _ = try await service.setEnabled(task.id, false)
        #expect(await field { try await triggers.fireWebhook(triggerID: id, secret: known, parameters: [:]) } == ErrorCode.validationError.rawValue)
    }

    @Test func manualRunsShareOnePerPipelineTriggerAndFilesMatchTheirPattern() async throws {
        let triggers = TriggerService(tasks: service)
        let first = try await triggers.runManually(pipelineID: "pipeline_5", parameters: [:], createdBy: nil)
        let second = try await triggers.runManually(pipelineID: "pipeline_5", parameters: [:], createdBy: nil)
        #expect(first.taskID == second.taskID)
        let other = try await triggers.runManually(pipelineID: "pipeline_6", parameters: [:], createdBy: nil)
        #expect(other.taskID != first.taskID)

        let csv = CreateTriggerRequest(name: "CSV", pipelineID: "pipeline_5", triggerType: "file", config: ["file_pattern": .string("in/*.csv")], enabled: nil)
        let watched = CreateTriggerRequest(name: "Watched", pipelineID: "pipeline_5", triggerType: "file",
                                           config: ["file_pattern": .string("*"), "watch_id": .string("watch_1")], enabled: nil)
        let (csvTask, _) = try await triggers.create(csv, createdBy: nil)
        let (watchedTask, _) = try await triggers.create(watched, createdBy: nil)
        #expect(try await triggers.fileArrived(FileEvent(kind: .created, fileID: "file_1", path: "in/a.csv", size: 1)) == 1)
        // Delivered again (at least once): no second run.
        #expect(try await triggers.fileArrived(FileEvent(kind: .created, fileID: "file_1", path: "in/a.csv", size: 1)) == 0)
        #expect(try await triggers.fileArrived(FileEvent(kind: .created, fileID: "file_2", path: "in/a.json", size: 1)) == 0)
        #expect(try await triggers.fileArrived(FileEvent(kind: .deleted, fileID: "file_1", path: "in/a.csv", size: 1)) == 0)
        #expect(try await triggers.fileArrived(FileEvent(kind: .imported, fileID: "file_3", path: "x", size: 1, watchID: "watch_1")) == 1)
        #expect(try await repository.runs(taskID: csvTask.id, status: nil, limit: 10, offset: 0).items.map { $0.parameters["file_id"] } == [.string("file_1")])
        #expect(try await repository.runs(taskID: watchedTask.id, status: nil, limit: 10, offset: 0).total == 1)
        #expect(await field {
            try await triggers.create(CreateTriggerRequest(name: "x", pipelineID: "p", triggerType: "file", config: nil, enabled: nil), createdBy: nil)
        } == "config.file_pattern")
    }
}
