import Foundation
import Platform
import SharedModels

/// The public ids of this service's resources: `project_12`, `pipeline_7`, `run_31`.
enum PublicID: String, Sendable {
    case project, pipeline, run

    /// `project_12` for 12.
    func format(_ id: Int64) -> String { "\(rawValue)_\(id)" }

    /// The number in a public id of this kind; `nil` for anything else (which then answers 404).
    func parse(_ text: String) -> Int64? {
        let prefix = rawValue + "_"
        guard text.hasPrefix(prefix), let id = Int64(text.dropFirst(prefix.count)), id > 0,
              String(id) == text.dropFirst(prefix.count) else { return nil }
        return id
    }
}

/// One page of a list as a service returns it; controllers turn its items into responses.
struct Listing<Item: Sendable>: Sendable {
    var items: [Item]
    /// Items matching the filters, over all pages.
    var total: Int
    var limit: Int
    var offset: Int

    /// The page of responses.
    func map<Response: Encodable & Sendable>(_ transform: (Item) -> Response) -> Page<Response> {
        Page(items: items.map(transform), total: total, limit: limit, offset: offset)
    }
}

/// Who deleted something, and when.
struct Deletion: Sendable, Equatable {
    var at: Date
    var by: String?
}

/// A project: a named group of pipelines.
struct Project: Sendable, Equatable {
    var id: Int64
    var name: String
    var description: String
    var pipelineCount: Int
    var createdBy: String?
    var createdAt: Date
    var updatedAt: Date
}

/// Where a pipeline is in its life.
enum PipelineStatus: String, Codable, Sendable, CaseIterable {
    /// Created or changed, never deployed: it cannot run.
    case draft
    /// Deployed: runs by hand and on its schedule.
    case active
    /// Deployed, schedule stopped: runs only by hand.
    case paused
    /// Its latest run failed.
    case failed

    /// The status after a run ended: `active` becomes `failed` when the run failed, `failed` becomes `active` again
    /// when one succeeded; `nil` when the status does not follow runs (a draft, a paused pipeline).
    static func after(_ status: PipelineStatus, runSucceeded: Bool) -> PipelineStatus? {
        switch status {
        case .active, .failed: runSucceeded ? .active : .failed
        case .draft, .paused: nil
        }
    }
}

/// A pipeline with the specification of its newest version.
struct Pipeline: Sendable, Equatable {
    var id: Int64
    var projectID: Int64
    var status: PipelineStatus
    var version: Int
    var deployedVersion: Int?
    var deployedAt: Date?
    var specification: PipelineSpecification
    var createdBy: String?
    var createdAt: Date
    var updatedAt: Date
    var lastRun: Run?

    var publicID: String { PublicID.pipeline.format(id) }
    /// The id of the deployment of `deployedVersion` (`pipeline_7_v4`).
    var deploymentID: String? { deployedVersion.map { "\(publicID)_v\($0)" } }
}

/// One stored version of a pipeline.
struct PipelineVersion: Sendable, Equatable {
    var pipelineID: Int64
    var version: Int
    var specification: PipelineSpecification
    /// What made it: `created`, `updated`, `rollback to version 2`.
    var change: String
    var createdBy: String?
    var createdAt: Date
}

/// The state of a run.
enum RunStatus: String, Codable, Sendable, CaseIterable {
    case queued, running, success, failed, cancelled

    /// Whether the run has ended.
    var isFinished: Bool { self == .success || self == .failed || self == .cancelled }
}

/// Stage timings of a run, as `002` reports them.
struct RunMetrics: Sendable, Equatable {
    var extractionMS: Double = 0
    var transformationMS: Double = 0
    var loadingMS: Double = 0
}

/// One execution of a job: a pipeline run (by hand or by the scheduler) or another job kind.
struct Run: Sendable, Equatable {
    var id: Int64
    var jobID: String
    var kind: JobRequest.Kind
    var pipelineID: Int64?
    var pipelineVersion: Int?
    var connectionID: Int64?
    var taskID: Int64?
    /// The scheduler's own id of this run (`taskrun_9`), for runs it started.
    var schedulerRunID: String?
    /// `manual`, `schedule`, or the scheduler's trigger.
    var trigger: String
    var status: RunStatus
    var parameters: [String: JSONValue]
    var requestedBy: String?
    var queuedAt: Date
    var startedAt: Date?
    var finishedAt: Date?
    var cancelRequestedAt: Date?
    var rowsProcessed: Int64 = 0
    var bytesProcessed: Int64 = 0
    var metrics = RunMetrics()
    var errorCode: String?
    var error: String?
    var result: JSONValue?
    /// The query the run sent to its source, once compiled.
    var compiledSQL: String?

    var publicID: String { PublicID.run.format(id) }

    /// Whole seconds from start to end, once the run has both.
    var durationSeconds: Int? {
        guard let startedAt, let finishedAt else { return nil }
        return Int(finishedAt.timeIntervalSince(startedAt).rounded())
    }
}

/// How a run ended, as its runner reports it.
struct RunOutcome: Sendable, Equatable {
    var status: RunStatus
    var rowsProcessed: Int64 = 0
    var bytesProcessed: Int64 = 0
    var metrics = RunMetrics()
    var errorCode: String?
    var error: String?
    /// What an analysis or a query found, kept with the run (`result` of its details).
    var result: JSONValue?
}

/// A run to record.
struct NewRun: Sendable, Equatable {
    var jobID: String
    var kind: JobRequest.Kind
    var pipelineID: Int64?
    var pipelineVersion: Int?
    var connectionID: Int64?
    var taskID: Int64?
    var schedulerRunID: String?
    var trigger: String
    var parameters: [String: JSONValue]
    var requestedBy: String?
    var queuedAt: Date
}

/// A line of a run's log.
struct RunLogEntry: Sendable, Equatable {
    enum Level: String, Codable, Sendable {
        case debug, info, warning, error
    }

    var at: Date
    var level: Level
    var message: String
}
