import Foundation
import Platform
@testable import Scheduler
import SharedModels
import Testing

@Suite struct TaskRulesTests {
    func definition(_ change: (inout TaskDefinition) -> Void = { _ in }) -> TaskDefinition {
        var task = TaskDefinition(name: "Nightly", taskType: .tableAnalysis, cronSchedule: "0 2 * * *", connectionID: 1)
        change(&task)
        return task
    }

    @Test func aRunCannotReplaceWhatACustomSQLTaskRuns() throws {
        let query = definition { $0.taskType = .customSQL; $0.parameters = ["sql": "SELECT 1"] }
        for name in ["sql", "read_only", "timeout_seconds"] {
            #expect(throws: APIError.self, "\(name)") { try TaskRules.validateRunParameters([name: "x"], of: query) }
        }
        try TaskRules.validateRunParameters(["since": "2025-01-01"], of: query)
        // Other kinds take what they are given.
        try TaskRules.validateRunParameters(["sql": "x", "tables": ["a"]], of: definition())
    }

    func field(of task: TaskDefinition) -> String? {
        do {
            try TaskRules.validate(task)
            return nil
        } catch let error as APIError {
            #expect(error.status == .unprocessableContent)
            guard case .string(let field)? = error.details?["field"] else { return "?" }
            return field
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func aCompleteTaskIsValid() {
        #expect(field(of: definition()) == nil)
    }

    @Test func eachRuleNamesItsField() {
        #expect(field(of: definition { $0.name = " " }) == "name")
        #expect(field(of: definition { $0.cronSchedule = "0 25 * * *" }) == "cron_schedule")
        #expect(field(of: definition { $0.cronSchedule = nil }) == "cron_schedule")
        #expect(field(of: definition { $0.timezone = "Mars/Olympus" }) == "timezone")
        #expect(field(of: definition { $0.connectionID = nil }) == "connection_id")
        #expect(field(of: definition { $0.taskType = .pipelineRun; $0.pipelineID = nil }) == "pipeline_id")
        #expect(field(of: definition { $0.taskType = .customSQL }) == "parameters.sql")
        #expect(field(of: definition { $0.taskType = .customSQL; $0.parameters = ["sql": .string("  ")] }) == "parameters.sql")
        #expect(field(of: definition { $0.taskType = .customSQL; $0.parameters = ["sql": .string("SELECT 1")] }) == nil)
        #expect(field(of: definition { $0.taskType = .datamartRefresh; $0.connectionID = nil }) == "parameters.datamart")
        #expect(field(of: definition { $0.maxRetries = 11 }) == "max_retries")
        #expect(field(of: definition { $0.retryBackoffSeconds = 0 }) == "retry_backoff_seconds")
        #expect(field(of: definition { $0.timeoutSeconds = 0 }) == "timeout_seconds")
        // Tasks fired only on demand need no schedule.
        #expect(field(of: definition { $0.cronSchedule = nil; $0.triggerType = .manual }) == nil)
    }

    @Test func anInvalidCronSaysWhy() {
        do {
            try TaskRules.validate(definition { $0.cronSchedule = "61 * * * *" })
            Issue.record("accepted minute 61")
        } catch let error as APIError {
            #expect(error.details?["reason"] == .string("minute: 61 is out of range 0-59"))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func aRequestIsLaidOverWhatIsStored() throws {
        let stored = definition { $0.maxRetries = 3 }
        let request = try JSONDecoder().decode(TaskRequest.self, from: Data(#"{"cron_schedule": "@hourly", "concurrency_policy": "replace"}"#.utf8))
        let updated = try request.applied(to: stored)
        #expect(updated.cronSchedule == "@hourly")
        #expect(updated.concurrencyPolicy == .replace)
        #expect(updated.maxRetries == 3)
        #expect(updated.connectionID == 1)
        let bad = try JSONDecoder().decode(TaskRequest.self, from: Data(#"{"task_type": "backup"}"#.utf8))
        #expect(throws: APIError.self) { try bad.applied(to: stored) }
    }

    @Test func nextRunIsTheNextFireInTheTasksZone() throws {
        let task = definition { $0.timezone = "Asia/Kolkata" }
        let next = try TaskService.nextRun(of: task, after: try Date("2026-01-01T00:00:00Z", strategy: .iso8601))
        #expect(next == (try Date("2026-01-01T20:30:00Z", strategy: .iso8601)))
        #expect(try TaskService.nextRun(of: definition { $0.enabled = false }) == nil)
    }
}

@Suite struct TriggerRulesTests {
    @Test func globsMatchWithinDirectories() {
        #expect(TriggerService.glob("sales/*.csv", matches: "sales/2026-11.csv"))
        #expect(!TriggerService.glob("sales/*.csv", matches: "sales/archive/2026-11.csv"))
        #expect(!TriggerService.glob("sales/*.csv", matches: "sales/2026-11.json"))
        #expect(TriggerService.glob("*/report-??.[ct]sv", matches: "x/report-07.tsv"))
    }

    @Test func onlyTheWebhookRouteGoesWithoutAToken() {
        func segments(_ path: String) -> [Substring] { path.split(separator: "/") }
        #expect(TriggersController.isWebhook(segments("/api/v1/mvp/triggers/trigger_4/webhook")))
        #expect(!TriggersController.isWebhook(segments("/api/v1/mvp/triggers/manual/webhook")))
        #expect(!TriggersController.isWebhook(segments("/api/v1/mvp/triggers/trigger_4/history")))
        #expect(!TriggersController.isWebhook(segments("/api/v1/mvp/triggers/trigger_4/webhook/x")))
        #expect(!TriggersController.isWebhook(segments("/api/v1/scheduler/tasks/trigger_4/webhook")))
    }

    @Test func idsAndSecrets() throws {
        #expect(try TriggerService.taskID(fromPublic: "trigger_42") == 42)
        #expect(throws: APIError.self) { try TriggerService.taskID(fromPublic: "trigger_x") }
        #expect(throws: APIError.self) { try TriggerService.taskID(fromPublic: "42") }
        #expect(TriggerService.constantTimeEqual("abc", "abc"))
        #expect(!TriggerService.constantTimeEqual("abc", "abd"))
        #expect(!TriggerService.constantTimeEqual("abc", "abcd"))
        #expect(TriggerService.digest("s") == TriggerService.digest("s"))
        #expect(TriggerService.digest("s").count == 64)
    }
}
