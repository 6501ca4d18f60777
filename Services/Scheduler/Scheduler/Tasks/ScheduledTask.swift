import Foundation
import Platform
import SharedModels

/// What a task runs when it fires (the `task_type` of the Scheduler API).
enum TaskType: String, Codable, Sendable, CaseIterable {
    case pipelineRun = "pipeline_run"
    case tableAnalysis = "table_analysis"
    case customSQL = "custom_sql"
    case logAnalysis = "log_analysis"
    case datamartRefresh = "datamart_refresh"

    /// The kind of job pipeline-runner is asked for.
    var jobKind: JobRequest.Kind {
        switch self {
        case .pipelineRun: .pipelineRun
        case .tableAnalysis: .tableAnalysis
        case .customSQL: .customSQL
        case .logAnalysis: .logAnalysis
        case .datamartRefresh: .datamartRefresh
        }
    }

    /// Task types that work on a customer's database.
    var needsConnection: Bool { self == .tableAnalysis || self == .customSQL || self == .logAnalysis }
}

/// What happens when a task fires while its previous run is unfinished.
enum ConcurrencyPolicy: String, Codable, Sendable, CaseIterable {
    /// Skip this fire (the default).
    case forbid
    /// Start another run beside it.
    case allow
    /// Cancel the unfinished runs and start this one.
    case replace
}

/// What happens to the fire times a task missed while no scheduler ran.
enum MisfirePolicy: String, Codable, Sendable, CaseIterable {
    /// Fire once for the latest missed time, however many were missed.
    case fireOnce = "fire_once"
    /// Fire only on time: a late fire is recorded as skipped.
    case skip
}

/// How a task is started, when it is seen as a trigger (`/api/v1/mvp/triggers`).
enum TriggerType: String, Codable, Sendable, CaseIterable {
    case cron, manual, file, webhook
}

/// The state of one run.
enum RunStatus: String, Codable, Sendable, CaseIterable {
    case queued, running, success, failed, skipped
    case timedOut = "timed_out"
}

/// A stored task.
struct ScheduledTask: Sendable, Equatable {
    var id: Int64
    var definition: TaskDefinition
    var nextRunAt: Date?
    var deactivatedReason: String?
    var createdBy: String?
    var createdAt: Date
    var updatedAt: Date
}

/// Everything a user defines about a task: what the API accepts, validated as a whole by ``TaskRules``.
struct TaskDefinition: Sendable, Equatable {
    var name: String
    var taskType: TaskType
    var cronSchedule: String?
    var timezone: String = "UTC"
    var connectionID: Int64?
    var pipelineID: String?
    var parameters: [String: JSONValue] = [:]
    var enabled: Bool = true
    var maxRetries: Int = 0
    var retryBackoffSeconds: Int = 60
    var timeoutSeconds: Int = 3600
    var concurrencyPolicy: ConcurrencyPolicy = .forbid
    var misfirePolicy: MisfirePolicy = .fireOnce
    var triggerType: TriggerType = .cron
    var triggerConfig: [String: JSONValue] = [:]

    /// The parsed schedule and zone; `nil` for a task that only fires on demand.
    func schedule() throws -> (cron: CronExpression, zone: TimeZone)? {
        guard let cronSchedule else { return nil }
        return (try CronExpression(cronSchedule), TimeZone(identifier: timezone) ?? .gmt)
    }
}

/// Body of `POST /api/v1/scheduler/tasks` and `PUT /{id}`: every field optional here; what is required is
/// decided when the request is applied to defaults (create) or to the stored task (update).
struct TaskRequest: Decodable, Sendable {
    var name: String?
    var taskType: String?
    var cronSchedule: String?
    var timezone: String?
    var connectionID: Int64?
    var pipelineID: String?
    var parameters: [String: JSONValue]?
    var enabled: Bool?
    var maxRetries: Int?
    var retryBackoffSeconds: Int?
    var timeoutSeconds: Int?
    var concurrencyPolicy: String?
    var misfirePolicy: String?

    enum CodingKeys: String, CodingKey {
        case name
        case taskType = "task_type"
        case cronSchedule = "cron_schedule"
        case timezone
        case connectionID = "connection_id"
        case pipelineID = "pipeline_id"
        case parameters, enabled
        case maxRetries = "max_retries"
        case retryBackoffSeconds = "retry_backoff_seconds"
        case timeoutSeconds = "timeout_seconds"
        case concurrencyPolicy = "concurrency_policy"
        case misfirePolicy = "misfire_policy"
    }

    /// The request laid over `base` (the stored task for an update, defaults for a create).
    func applied(to base: TaskDefinition) throws -> TaskDefinition {
        var definition = base
        if let name { definition.name = name }
        if let taskType {
            guard let type = TaskType(rawValue: taskType) else {
                throw APIError.validation(field: "task_type", reason: "must be one of \(TaskType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            definition.taskType = type
        }
        if let cronSchedule { definition.cronSchedule = cronSchedule }
        if let timezone { definition.timezone = timezone }
        if let connectionID { definition.connectionID = connectionID }
        if let pipelineID { definition.pipelineID = pipelineID }
        if let parameters { definition.parameters = parameters }
        if let enabled { definition.enabled = enabled }
        if let maxRetries { definition.maxRetries = maxRetries }
        if let retryBackoffSeconds { definition.retryBackoffSeconds = retryBackoffSeconds }
        if let timeoutSeconds { definition.timeoutSeconds = timeoutSeconds }
        if let concurrencyPolicy {
            guard let policy = ConcurrencyPolicy(rawValue: concurrencyPolicy) else {
                throw APIError.validation(field: "concurrency_policy", reason: "must be forbid, allow or replace")
            }
            definition.concurrencyPolicy = policy
        }
        if let misfirePolicy {
            guard let policy = MisfirePolicy(rawValue: misfirePolicy) else {
                throw APIError.validation(field: "misfire_policy", reason: "must be fire_once or skip")
            }
            definition.misfirePolicy = policy
        }
        return definition
    }
}

/// The rules a task definition must satisfy; every violation is a 422 naming its field.
enum TaskRules {
    /// What a `custom_sql` task runs, and how, is the task's: written only by engineers and above, while anyone who
    /// may read the task may run it now. A run's own parameters must not replace them.
    static let customSQLFixedParameters = ["sql", "read_only", "timeout_seconds"]

    /// Parameters given to one run of `task` (they override the task's own for that run).
    static func validateRunParameters(_ parameters: [String: JSONValue], of task: TaskDefinition) throws {
        guard task.taskType == .customSQL else { return }
        for name in customSQLFixedParameters where parameters[name] != nil {
            throw APIError.validation(field: "parameters.\(name)", reason: "is set by the custom_sql task and cannot be changed for one run; "
                                      + "change the task to change it")
        }
    }

    static func validate(_ task: TaskDefinition) throws {
        guard TextRules.isName(task.name) else {
            throw APIError.validation(field: "name", reason: "must be 1 to 200 characters, without control characters")
        }
        guard TimeZone(identifier: task.timezone) != nil, task.timezone.count <= 64 else {
            throw APIError.validation(field: "timezone", reason: "'\(task.timezone)' is not an IANA time zone (such as Europe/Berlin or UTC)")
        }
        if task.triggerType == .cron {
            guard let cron = task.cronSchedule else { throw APIError.validation(field: "cron_schedule", reason: "is required") }
            do {
                _ = try CronExpression(cron)
            } catch {
                throw APIError.validation(field: "cron_schedule", reason: error.description)
            }
        }
        if task.taskType == .pipelineRun {
            guard let pipeline = task.pipelineID, !pipeline.isEmpty, pipeline.count <= 100 else {
                throw APIError.validation(field: "pipeline_id", reason: "is required for pipeline_run tasks")
            }
        }
        if task.taskType.needsConnection {
            guard let connection = task.connectionID, connection > 0 else {
                throw APIError.validation(field: "connection_id", reason: "is required for \(task.taskType.rawValue) tasks")
            }
        }
        if task.taskType == .customSQL {
            guard case .string(let sql)? = task.parameters["sql"], !sql.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw APIError.validation(field: "parameters.sql", reason: "is required for custom_sql tasks")
            }
        }
        if task.taskType == .datamartRefresh {
            guard case .string(let datamart)? = task.parameters["datamart"], !datamart.isEmpty, datamart.count <= 100 else {
                throw APIError.validation(field: "parameters.datamart", reason: "is required for datamart_refresh tasks")
            }
        }
        guard (0...10).contains(task.maxRetries) else { throw APIError.validation(field: "max_retries", reason: "must be 0 to 10") }
        guard (1...86_400).contains(task.retryBackoffSeconds) else {
            throw APIError.validation(field: "retry_backoff_seconds", reason: "must be 1 to 86400")
        }
        guard (1...7 * 86_400).contains(task.timeoutSeconds) else {
            throw APIError.validation(field: "timeout_seconds", reason: "must be 1 to 604800")
        }
        let parameters = (try? JSONEncoder().encode(task.parameters))?.count ?? 0
        guard parameters <= 64 * 1024 else { throw APIError.validation(field: "parameters", reason: "must be at most 64 KB of JSON") }
    }
}
