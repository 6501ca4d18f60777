import Foundation
import Platform
@testable import Scheduler
import SharedModels
import Testing

/// pipeline-runner's managed schedules, and pausing and resuming all of a pipeline's runs, over the same storage.
extension TaskServiceTests {
    var schedules: PipelineScheduleService { PipelineScheduleService(tasks: service) }

    @Test func aPutCreatesThenReplacesThePipelinesOneScheduleWithoutLookingThePipelineUp() async throws {
        // pipeline_77 is unknown to the directory: pipeline-runner, which asks, owns it.
        let mine = try await repository.create(
            TaskDefinition(name: "Mine", taskType: .pipelineRun, cronSchedule: "@daily", pipelineID: "pipeline_77"), nextRunAt: nil, createdBy: "user_3")
        let created = try await schedules.putSchedule(
            pipelineID: "pipeline_77", PipelineScheduleRequest(name: "Nightly", cronSchedule: "0 2 * * *", timezone: "Europe/Berlin"))
        #expect(created.id != mine.id && created.createdBy == PipelineScheduleService.manager && created.nextRunAt != nil)
        #expect(created.definition.taskType == .pipelineRun && created.definition.triggerType == .cron)
        #expect(created.definition.pipelineID == "pipeline_77" && created.definition.enabled && created.definition.timezone == "Europe/Berlin")

        let replaced = try await schedules.putSchedule(pipelineID: "pipeline_77", PipelineScheduleRequest(name: "Hourly", cronSchedule: "@hourly"))
        #expect(replaced.id == created.id && replaced.definition.name == "Hourly" && replaced.definition.cronSchedule == "@hourly")
        #expect(replaced.definition.timezone == "UTC")
        #expect(try await repository.list(TaskFilter()).total == 2)
        #expect(announcements.count == 2)

        #expect(try await schedules.deleteSchedule(pipelineID: "pipeline_77") == 1)
        #expect(try await schedules.deleteSchedule(pipelineID: "pipeline_77") == 0)
        #expect(try await repository.find(id: created.id) == nil)
        #expect(try await repository.find(id: mine.id) == mine)
    }

    @Test func aScheduleIsValidatedAsAUsersTaskIs() async throws {
        let pipeline = "pipeline_77"
        #expect(await field { try await schedules.putSchedule(pipelineID: pipeline, PipelineScheduleRequest(name: "x", cronSchedule: "@often")) } == "cron_schedule")
        #expect(await field {
            try await schedules.putSchedule(pipelineID: pipeline, PipelineScheduleRequest(name: "x", cronSchedule: "@daily", timezone: "Mars/Base"))
        } == "timezone")
        #expect(await field { try await schedules.putSchedule(pipelineID: pipeline, PipelineScheduleRequest(name: " ", cronSchedule: "@daily")) } == "name")
        #expect(await field {
            try await schedules.putSchedule(pipelineID: String(repeating: "p", count: 101), PipelineScheduleRequest(name: "x", cronSchedule: "@daily"))
        } == "pipeline_id")
        #expect(try await repository.list(TaskFilter()).total == 0)
        #expect(announcements.count == 0)
    }

    @Test func pauseAndResumeChangeEveryRunTaskOfThePipelineButNeverUndoADeactivation() async throws {
        let triggers = TriggerService(tasks: service)
        let cron = try await service.create(try request(#"""
            {"name": "Hourly", "task_type": "pipeline_run", "pipeline_id": "pipeline_1", "cron_schedule": "@hourly"}
            """#), createdBy: "user_3")
        let (manual, _) = try await triggers.create(
            CreateTriggerRequest(name: "By hand", pipelineID: "pipeline_1", triggerType: "manual", config: nil, enabled: nil), createdBy: nil)
        let managed = try await schedules.putSchedule(pipelineID: "pipeline_1", PipelineScheduleRequest(name: "Nightly", cronSchedule: "0 2 * * *"))
        let other = try await service.create(try request(#"""
            {"name": "Other", "task_type": "pipeline_run", "pipeline_id": "pipeline_5", "cron_schedule": "@hourly"}
            """#), createdBy: nil)
        let ids = [cron.id, manual.id, managed.id]

        #expect(try await schedules.setEnabled(pipelineID: "pipeline_1", false) == 3)
        #expect(try await schedules.setEnabled(pipelineID: "pipeline_1", false) == 0)
        for id in ids {
            let task = try #require(try await repository.find(id: id))
            #expect(!task.definition.enabled && task.nextRunAt == nil)
        }
        #expect(try await repository.find(id: other.id)?.definition.enabled == true)

        let announced = announcements.count
        #expect(try await schedules.setEnabled(pipelineID: "pipeline_1", true) == 3)
        #expect(announcements.count > announced)
        #expect(try await repository.find(id: cron.id)?.nextRunAt != nil)

        // Deleted, then a resume: what the platform deactivated stays so, with its reason.
        #expect(try await repository.deactivate(.pipeline("pipeline_1"), reason: "pipeline pipeline_1 was deleted") == 3)
        #expect(try await schedules.setEnabled(pipelineID: "pipeline_1", true) == 0)
        for id in ids {
            let task = try #require(try await repository.find(id: id))
            #expect(!task.definition.enabled && task.deactivatedReason == "pipeline pipeline_1 was deleted")
        }
        // Restored: pipeline-runner puts its schedule again, which brings back that one task only.
        let restored = try await schedules.putSchedule(pipelineID: "pipeline_1", PipelineScheduleRequest(name: "Nightly", cronSchedule: "0 2 * * *"))
        #expect(restored.id == managed.id && restored.definition.enabled && restored.deactivatedReason == nil && restored.nextRunAt != nil)
        #expect(try await repository.find(id: cron.id)?.definition.enabled == false)
    }
}
