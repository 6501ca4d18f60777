import Foundation

/// The Redis streams through which services hand work and facts to each other (DESIGN.md §2).
public enum PlatformStream: String, Sendable, CaseIterable {
    /// Requests to execute something; consumed by `pipeline-runner` replicas.
    case jobs = "platform:jobs"
    /// Lifecycle of runs: started, progress, completed, failed.
    case runEvents = "platform:run-events"
    /// Files stored, changed, deleted or imported.
    case fileEvents = "platform:file-events"
    /// Connections created, updated or deleted.
    case connectionEvents = "platform:connection-events"
    /// Pipelines created, updated, deployed, deleted or restored.
    case pipelineEvents = "platform:pipeline-events"
    /// Who did what to which resource.
    case audit = "platform:audit"
}

/// A typed payload that travels on one of the platform streams.
public protocol StreamEvent: Codable, Sendable {
    /// The stream this payload is published to.
    static var stream: PlatformStream { get }
    /// A short type tag stored beside the payload, so consumers can route without decoding.
    var eventType: String { get }
}

/// A request to execute a unit of work, published to `platform:jobs`.
public struct JobRequest: StreamEvent, Equatable {
    public static let stream = PlatformStream.jobs
    /// What kind of work is requested.
    public enum Kind: String, Codable, Sendable {
        case pipelineRun = "pipeline_run"
        case tableAnalysis = "table_analysis"
        case customSQL = "custom_sql"
        case logAnalysis = "log_analysis"
        case datamartRefresh = "datamart_refresh"
        case fileImport = "file_import"
        /// Stop the run `run_id` (it timed out, or a newer run replaces it).
        case cancel
    }

    /// Idempotency key: publishing the same job twice must not create a second run.
    public var jobID: String
    /// The work to do.
    public var kind: Kind
    /// The run this job executes.
    public var runID: String
    /// The scheduler task that fired it, if any.
    public var taskID: Int?
    /// The pipeline to run, for `pipeline_run`.
    public var pipelineID: String?
    /// The connection to work on, for analysis and SQL jobs.
    public var connectionID: Int?
    /// Job-specific parameters.
    public var parameters: [String: JSONValue]
    /// When the job was requested.
    public var requestedAt: Date

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case kind
        case runID = "run_id"
        case taskID = "task_id"
        case pipelineID = "pipeline_id"
        case connectionID = "connection_id"
        case parameters
        case requestedAt = "requested_at"
    }

    public var eventType: String { kind.rawValue }

    /// Creates a job request.
    public init(
        jobID: String, kind: Kind, runID: String, taskID: Int? = nil, pipelineID: String? = nil,
        connectionID: Int? = nil, parameters: [String: JSONValue] = [:], requestedAt: Date = Date()
    ) {
        self.jobID = jobID
        self.kind = kind
        self.runID = runID
        self.taskID = taskID
        self.pipelineID = pipelineID
        self.connectionID = connectionID
        self.parameters = parameters
        self.requestedAt = requestedAt
    }
}

/// A step in the life of a run, published to `platform:run-events`.
public struct RunEvent: StreamEvent, Equatable {
    public static let stream = PlatformStream.runEvents
    /// Which step.
    public enum Kind: String, Codable, Sendable {
        case started, progress, completed, failed, cancelled
    }

    /// The run.
    public var runID: String
    /// The job that started it.
    public var jobID: String?
    /// The scheduler task behind it, if any.
    public var taskID: Int?
    /// The scheduler's run (`taskrun_N`) behind a run with an id of its own (pipeline-runner's `run_N`).
    public var schedulerRunID: String?
    /// The pipeline run (`pipeline_7`), for runs of a pipeline: what live views of a pipeline follow.
    public var pipelineID: String?
    /// Which step this is.
    public var kind: Kind
    /// Rows read so far.
    public var rowsRead: Int64
    /// Rows written so far.
    public var rowsWritten: Int64
    /// Bytes moved so far.
    public var bytes: Int64
    /// Milliseconds spent per stage (`extract`, `load`, ...).
    public var stageTimingsMS: [String: Double]
    /// A safe description of the failure, for `failed`.
    public var error: String?
    /// The stable code of the failure (`CONNECTOR_ERROR`, `PIPELINE_EXECUTION_ERROR` ...), for `failed`.
    public var errorCode: String?
    /// When it happened.
    public var occurredAt: Date

    enum CodingKeys: String, CodingKey {
        case runID = "run_id"
        case jobID = "job_id"
        case taskID = "task_id"
        case schedulerRunID = "scheduler_run_id"
        case pipelineID = "pipeline_id"
        case errorCode = "error_code"
        case kind
        case rowsRead = "rows_read"
        case rowsWritten = "rows_written"
        case bytes
        case stageTimingsMS = "stage_timings_ms"
        case error
        case occurredAt = "occurred_at"
    }

    public var eventType: String { kind.rawValue }

    /// Creates a run event.
    public init(
        runID: String, jobID: String? = nil, taskID: Int? = nil, schedulerRunID: String? = nil, pipelineID: String? = nil, kind: Kind,
        rowsRead: Int64 = 0, rowsWritten: Int64 = 0, bytes: Int64 = 0, stageTimingsMS: [String: Double] = [:],
        error: String? = nil, errorCode: String? = nil, occurredAt: Date = Date()
    ) {
        self.runID = runID
        self.jobID = jobID
        self.taskID = taskID
        self.schedulerRunID = schedulerRunID
        self.pipelineID = pipelineID
        self.kind = kind
        self.rowsRead = rowsRead
        self.rowsWritten = rowsWritten
        self.bytes = bytes
        self.stageTimingsMS = stageTimingsMS
        self.error = error
        self.errorCode = errorCode
        self.occurredAt = occurredAt
    }
}

/// A change to a stored file, published to `platform:file-events`.
public struct FileEvent: StreamEvent, Equatable {
    public static let stream = PlatformStream.fileEvents
    /// What happened to the file.
    public enum Kind: String, Codable, Sendable {
        case created, updated, deleted, imported
    }

    /// What happened.
    public var kind: Kind
    /// The stored file.
    public var fileID: String
    /// Its path in storage.
    public var path: String
    /// Its size in bytes.
    public var size: Int64
    /// The storage watch that noticed it, if any.
    public var watchID: String?
    /// When it happened.
    public var occurredAt: Date

    enum CodingKeys: String, CodingKey {
        case kind
        case fileID = "file_id"
        case path
        case size
        case watchID = "watch_id"
        case occurredAt = "occurred_at"
    }

    public var eventType: String { kind.rawValue }

    /// Creates a file event.
    public init(kind: Kind, fileID: String, path: String, size: Int64, watchID: String? = nil, occurredAt: Date = Date()) {
        self.kind = kind
        self.fileID = fileID
        self.path = path
        self.size = size
        self.watchID = watchID
        self.occurredAt = occurredAt
    }
}

/// A change to a connection, published to `platform:connection-events`.
public struct ConnectionEvent: StreamEvent, Equatable {
    public static let stream = PlatformStream.connectionEvents
    /// What happened to the connection.
    public enum Kind: String, Codable, Sendable {
        case created = "connection.created"
        case updated = "connection.updated"
        case deleted = "connection.deleted"
    }

    /// What happened.
    public var kind: Kind
    /// The connection's id.
    public var connectionID: Int
    /// When it happened.
    public var occurredAt: Date

    enum CodingKeys: String, CodingKey {
        case kind
        case connectionID = "connection_id"
        case occurredAt = "occurred_at"
    }

    public var eventType: String { kind.rawValue }

    /// Creates a connection event.
    public init(kind: Kind, connectionID: Int, occurredAt: Date = Date()) {
        self.kind = kind
        self.connectionID = connectionID
        self.occurredAt = occurredAt
    }
}

/// A change to a pipeline, published to `platform:pipeline-events`.
public struct PipelineEvent: StreamEvent, Equatable {
    public static let stream = PlatformStream.pipelineEvents
    /// What happened to the pipeline.
    public enum Kind: String, Codable, Sendable {
        case created = "pipeline.created"
        case updated = "pipeline.updated"
        case deployed = "pipeline.deployed"
        case deleted = "pipeline.deleted"
        case restored = "pipeline.restored"
    }

    /// What happened.
    public var kind: Kind
    /// The pipeline's id (`pipeline_12`).
    public var pipelineID: String
    /// The project it belongs to, if any.
    public var projectID: String?
    /// When it happened.
    public var occurredAt: Date

    enum CodingKeys: String, CodingKey {
        case kind
        case pipelineID = "pipeline_id"
        case projectID = "project_id"
        case occurredAt = "occurred_at"
    }

    public var eventType: String { kind.rawValue }

    /// Creates a pipeline event.
    public init(kind: Kind, pipelineID: String, projectID: String? = nil, occurredAt: Date = Date()) {
        self.kind = kind
        self.pipelineID = pipelineID
        self.projectID = projectID
        self.occurredAt = occurredAt
    }
}

/// A record of who did what, published to `platform:audit`. Never carries secret material.
public struct AuditEvent: StreamEvent, Equatable {
    public static let stream = PlatformStream.audit

    /// Who acted (`user_3`, `service:scheduler`).
    public var actor: String
    /// What was done (`secret.read`, `user.delete`).
    public var action: String
    /// What it was done to (`secret/database/connections/sales`).
    public var resource: String
    /// The service that performed it.
    public var service: String
    /// `success` or `denied` or `failed`.
    public var outcome: String
    /// Extra non-secret context.
    public var details: [String: JSONValue]
    /// When it happened.
    public var occurredAt: Date

    enum CodingKeys: String, CodingKey {
        case actor
        case action
        case resource
        case service
        case outcome
        case details
        case occurredAt = "occurred_at"
    }

    public var eventType: String { action }

    /// Creates an audit record.
    public init(
        actor: String, action: String, resource: String, service: String, outcome: String = "success",
        details: [String: JSONValue] = [:], occurredAt: Date = Date()
    ) {
        self.actor = actor
        self.action = action
        self.resource = resource
        self.service = service
        self.outcome = outcome
        self.details = details
        self.occurredAt = occurredAt
    }
}
