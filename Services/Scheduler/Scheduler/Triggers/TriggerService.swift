import Crypto
import Foundation
import Platform
import SharedModels

#if canImport(Glibc)
import Glibc
#endif

/// Body of `POST /api/v1/mvp/triggers/create` (`002-platform-api.md`).
struct CreateTriggerRequest: Decodable, Sendable {
    var name: String
    var pipelineID: String
    var triggerType: String
    var config: [String: JSONValue]?
    var enabled: Bool?

    enum CodingKeys: String, CodingKey {
        case name
        case pipelineID = "pipeline_id"
        case triggerType = "trigger_type"
        case config, enabled
    }
}

/// Triggers are scheduler tasks of type `pipeline_run` seen from the pipeline's side: a cron trigger is a
/// scheduled task; manual, file and webhook triggers are tasks without a schedule that runs are queued on.
struct TriggerService: Sendable {
    let tasks: TaskService

    /// `trigger_<task id>`.
    static func publicID(_ taskID: Int64) -> String { "trigger_\(taskID)" }

    static func taskID(fromPublic text: String) throws -> Int64 {
        guard text.hasPrefix("trigger_"), let id = Int64(text.dropFirst("trigger_".count)), id > 0 else {
            throw APIError.notFound("trigger", id: text)
        }
        return id
    }

    /// Creates the task behind a trigger. A webhook trigger gets a secret, returned only here; the task keeps
    /// its SHA-256.
    func create(_ request: CreateTriggerRequest, createdBy: String?) async throws -> (task: ScheduledTask, webhookSecret: String?) {
        guard let type = TriggerType(rawValue: request.triggerType) else {
            throw APIError.validation(field: "trigger_type", reason: "must be cron, manual, file or webhook")
        }
        let config = request.config ?? [:]
        var taskRequest = TaskRequest(name: request.name, taskType: TaskType.pipelineRun.rawValue, pipelineID: request.pipelineID, enabled: request.enabled)
        var stored: [String: JSONValue] = [:]
        var secret: String?
        switch type {
        case .cron:
            guard case .string(let cron)? = config["cron_expression"] else {
                throw APIError.validation(field: "config.cron_expression", reason: "is required for cron triggers")
            }
            taskRequest.cronSchedule = cron
            if case .string(let zone)? = config["timezone"] { taskRequest.timezone = zone }
        case .manual:
            break
        case .file:
            guard case .string(let pattern)? = config["file_pattern"], !pattern.isEmpty, pattern.count <= 500 else {
                throw APIError.validation(field: "config.file_pattern", reason: "is required for file triggers (a glob such as sales/*.csv)")
            }
            stored["file_pattern"] = .string(pattern)
            if case .string(let watch)? = config["watch_id"] { stored["watch_id"] = .string(watch) }
        case .webhook:
            let token = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64URLEncodedString()
            secret = "whs_" + token
            stored["secret_sha256"] = .string(Self.digest(secret!))
        }
        let task = try await tasks.create(taskRequest, triggerType: type, triggerConfig: stored, createdBy: createdBy)
        return (task, secret)
    }

    /// Queues a run of a pipeline by hand, on its manual trigger (made on first use).
    func runManually(pipelineID: String, parameters: [String: JSONValue], createdBy: String?) async throws -> TaskRun {
        var filter = TaskFilter()
        filter.pipelineID = pipelineID
        filter.triggersOnly = true
        filter.triggerType = .manual
        filter.limit = 1
        let existing = try await tasks.repository.list(filter).items.first
        let task: ScheduledTask
        if let existing {
            task = existing
        } else {
            // The path names the pipeline: one that does not exist is not found, not an invalid field.
            guard try await tasks.pipelines.pipelineExists(pipelineID) else { throw APIError.notFound("pipeline", id: pipelineID) }
            let request = TaskRequest(name: "Manual runs of \(pipelineID)", taskType: TaskType.pipelineRun.rawValue, pipelineID: pipelineID)
            task = try await tasks.create(request, triggerType: .manual, createdBy: createdBy)
        }
        return try await tasks.runNow(task.id, parameters: parameters)
    }

    /// Fires a webhook trigger whose secret matches.
    func fireWebhook(triggerID: String, secret: String?, parameters: [String: JSONValue]) async throws -> TaskRun {
        let task = try? await tasks.find(try Self.taskID(fromPublic: triggerID))
        // The same answer for an unknown trigger and a wrong secret: nothing to learn by guessing.
        guard let task, task.definition.triggerType == .webhook, let secret,
              case .string(let expected)? = task.definition.triggerConfig["secret_sha256"],
              Self.constantTimeEqual(Self.digest(secret), expected) else {
            throw APIError(.unauthorized, code: .authFailed, message: "Unknown webhook trigger or wrong X-Trigger-Secret")
        }
        guard task.definition.enabled else { throw APIError(.conflict, code: .validationError, message: "The trigger is paused") }
        return try await tasks.runNow(task.id, parameters: parameters, trigger: "webhook")
    }

    /// Queues a run on every enabled file trigger whose pattern (and watch, when it names one) matches a new file.
    func fileArrived(_ event: FileEvent) async throws -> Int {
        guard event.kind == .created || event.kind == .imported else { return 0 }
        var filter = TaskFilter()
        filter.enabled = true
        filter.triggersOnly = true
        filter.triggerType = .file
        filter.limit = 500
        var fired = 0
        var offset = 0
        while true {
            filter.offset = offset
            let page = try await tasks.repository.list(filter).items
            for task in page {
                guard case .string(let pattern)? = task.definition.triggerConfig["file_pattern"], Self.glob(pattern, matches: event.path) else { continue }
                if case .string(let watch)? = task.definition.triggerConfig["watch_id"], watch != event.watchID { continue }
                do {
                    _ = try await tasks.runNow(task.id, parameters: ["file_id": .string(event.fileID), "path": .string(event.path)], trigger: "file")
                    fired += 1
                } catch let error as APIError where error.code == .duplicateResource {
                    continue  // The same event again: its run exists.
                }
            }
            if page.count < filter.limit { return fired }
            offset += filter.limit
        }
    }

    static func digest(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Shell-style matching (`*`, `?`, `[...]`); `*` does not cross `/`.
    static func glob(_ pattern: String, matches path: String) -> Bool {
        fnmatch(pattern, path, FNM_PATHNAME) == 0
    }
}
