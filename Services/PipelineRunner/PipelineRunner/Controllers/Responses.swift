import Foundation
import Platform
import SharedModels

/// A project as the API shows it.
struct ProjectResponse: Encodable, Sendable {
    let project: Project

    enum CodingKeys: String, CodingKey {
        case id, name, description, pipelinesCount = "pipelines_count", createdBy = "created_by", createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(PublicID.project.format(project.id), forKey: .id)
        try container.encode(project.name, forKey: .name)
        try container.encode(project.description, forKey: .description)
        try container.encode(project.pipelineCount, forKey: .pipelinesCount)
        try container.encode(project.createdBy, forKey: .createdBy)
        try container.encode(project.createdAt, forKey: .createdAt)
        try container.encode(project.updatedAt, forKey: .updatedAt)
    }
}

/// A pipeline as lists show it (`002`'s list item), or with its whole specification (`detailed`).
struct PipelineResponse: Encodable, Sendable {
    let pipeline: Pipeline
    var detailed = false

    enum CodingKeys: String, CodingKey {
        case id, projectID = "project_id", name, description, status, version, deployedVersion = "deployed_version"
        case deployedAt = "deployed_at", deploymentID = "deployment_id", schedule, createdBy = "created_by"
        case createdAt = "created_at", updatedAt = "updated_at", lastRun = "last_run", sources, transformations, targets
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let specification = pipeline.specification
        try container.encode(pipeline.publicID, forKey: .id)
        try container.encode(PublicID.project.format(pipeline.projectID), forKey: .projectID)
        try container.encode(specification.name, forKey: .name)
        try container.encode(specification.description, forKey: .description)
        try container.encode(pipeline.status, forKey: .status)
        try container.encode(pipeline.version, forKey: .version)
        try container.encode(pipeline.deployedVersion, forKey: .deployedVersion)
        try container.encode(pipeline.deployedAt, forKey: .deployedAt)
        try container.encode(pipeline.deploymentID, forKey: .deploymentID)
        try container.encode(specification.schedule, forKey: .schedule)
        try container.encode(pipeline.createdBy, forKey: .createdBy)
        try container.encode(pipeline.createdAt, forKey: .createdAt)
        try container.encode(pipeline.updatedAt, forKey: .updatedAt)
        try container.encode(pipeline.lastRun.map(LastRun.init), forKey: .lastRun)
        if detailed {
            try container.encode(specification.sources, forKey: .sources)
            try container.encode(specification.transformations, forKey: .transformations)
            try container.encode(specification.targets, forKey: .targets)
        }
    }

    /// `last_run` of a list item.
    struct LastRun: Encodable {
        let run: Run

        init(_ run: Run) { self.run = run }

        enum CodingKeys: String, CodingKey {
            case id, status, startedAt = "started_at", finishedAt = "finished_at", rowsProcessed = "rows_processed"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(run.publicID, forKey: .id)
            try container.encode(run.status, forKey: .status)
            try container.encode(run.startedAt, forKey: .startedAt)
            try container.encode(run.finishedAt, forKey: .finishedAt)
            try container.encode(run.rowsProcessed, forKey: .rowsProcessed)
        }
    }
}

/// One stored version of a pipeline, with its specification.
struct VersionResponse: Encodable, Sendable {
    let version: PipelineVersion

    enum CodingKeys: String, CodingKey {
        case pipelineID = "pipeline_id", version, change, createdBy = "created_by", createdAt = "created_at", specification
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(PublicID.pipeline.format(version.pipelineID), forKey: .pipelineID)
        try container.encode(version.version, forKey: .version)
        try container.encode(version.change, forKey: .change)
        try container.encode(version.createdBy, forKey: .createdBy)
        try container.encode(version.createdAt, forKey: .createdAt)
        try container.encode(version.specification, forKey: .specification)
    }
}

/// The answer to a deploy (`002`: `{pipeline_id, status: "deployed", ..., deployment_time}`).
struct DeploymentResponse: Encodable, Sendable {
    let deployment: Deployment

    enum CodingKeys: String, CodingKey {
        case pipelineID = "pipeline_id", status, version, deploymentID = "deployment_id", deploymentTime = "deployment_time"
        case scheduleTaskID = "schedule_task_id"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(deployment.pipeline.publicID, forKey: .pipelineID)
        try container.encode("deployed", forKey: .status)
        try container.encode(deployment.pipeline.deployedVersion, forKey: .version)
        try container.encode(deployment.pipeline.deploymentID, forKey: .deploymentID)
        try container.encode(deployment.deployedAt, forKey: .deploymentTime)
        try container.encode(deployment.scheduleTaskID, forKey: .scheduleTaskID)
    }
}

/// The answer to starting a run (`202`): `{run_id, pipeline_id, status, started_at}`; `started_at` is when it
/// was queued.
struct RunQueuedResponse: Encodable, Sendable {
    let run: Run

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", pipelineID = "pipeline_id", status, startedAt = "started_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(run.publicID, forKey: .runID)
        try container.encode(run.pipelineID.map(PublicID.pipeline.format), forKey: .pipelineID)
        try container.encode(run.status, forKey: .status)
        try container.encode(run.queuedAt, forKey: .startedAt)
    }
}

/// A run with its figures (`002`'s run history item, and more).
struct RunResponse: Encodable, Sendable {
    let run: Run

    enum CodingKeys: String, CodingKey {
        case id, pipelineID = "pipeline_id", kind, status, trigger, version, parameters, queuedAt = "queued_at"
        case startedAt = "started_at", finishedAt = "finished_at", durationSeconds = "duration_seconds"
        case rowsProcessed = "rows_processed", bytesProcessed = "bytes_processed", metrics, error
        case cancelRequestedAt = "cancel_requested_at", jobID = "job_id", taskID = "task_id", schedulerRunID = "scheduler_run_id"
        case connectionID = "connection_id", result, compiledSQL = "compiled_sql"
    }

    enum MetricKeys: String, CodingKey {
        case extraction = "extraction_time_ms", transformation = "transformation_time_ms", loading = "loading_time_ms"
    }

    enum ErrorKeys: String, CodingKey {
        case code, message
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(run.publicID, forKey: .id)
        try container.encode(run.pipelineID.map(PublicID.pipeline.format), forKey: .pipelineID)
        try container.encode(run.kind, forKey: .kind)
        try container.encode(run.status, forKey: .status)
        try container.encode(run.trigger, forKey: .trigger)
        try container.encode(run.pipelineVersion, forKey: .version)
        try container.encode(run.parameters, forKey: .parameters)
        try container.encode(run.queuedAt, forKey: .queuedAt)
        try container.encode(run.startedAt, forKey: .startedAt)
        try container.encode(run.finishedAt, forKey: .finishedAt)
        try container.encode(run.durationSeconds, forKey: .durationSeconds)
        try container.encode(run.rowsProcessed, forKey: .rowsProcessed)
        try container.encode(run.bytesProcessed, forKey: .bytesProcessed)
        var metrics = container.nestedContainer(keyedBy: MetricKeys.self, forKey: .metrics)
        try metrics.encode(Self.milliseconds(run.metrics.extractionMS), forKey: .extraction)
        try metrics.encode(Self.milliseconds(run.metrics.transformationMS), forKey: .transformation)
        try metrics.encode(Self.milliseconds(run.metrics.loadingMS), forKey: .loading)
        if let message = run.error {
            var error = container.nestedContainer(keyedBy: ErrorKeys.self, forKey: .error)
            try error.encode(run.errorCode ?? ErrorCode.pipelineExecutionError.rawValue, forKey: .code)
            try error.encode(message, forKey: .message)
        } else {
            try container.encodeNil(forKey: .error)
        }
        try container.encode(run.cancelRequestedAt, forKey: .cancelRequestedAt)
        try container.encode(run.jobID, forKey: .jobID)
        try container.encode(run.taskID, forKey: .taskID)
        try container.encode(run.schedulerRunID, forKey: .schedulerRunID)
        try container.encode(run.connectionID, forKey: .connectionID)
        try container.encode(run.result, forKey: .result)
        try container.encode(run.compiledSQL, forKey: .compiledSQL)
    }
}

extension RunResponse {
    /// Whole milliseconds of a stored figure; a value no clock produces (NaN, infinite, negative) is 0.
    static func milliseconds(_ value: Double) -> Int64 {
        guard value.isFinite, value > 0 else { return 0 }
        return Int64(exactly: value.rounded()) ?? Int64.max
    }
}

/// A line of a run's log.
struct LogEntryResponse: Encodable, Sendable {
    let entry: RunLogEntry

    enum CodingKeys: String, CodingKey {
        case timestamp, level, message
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(entry.at, forKey: .timestamp)
        try container.encode(entry.level, forKey: .level)
        try container.encode(entry.message, forKey: .message)
    }
}

/// A deleted entity (`002`'s Admin API list item).
struct DeletedEntityResponse: Encodable, Sendable {
    let entity: DeletedEntity

    enum CodingKeys: String, CodingKey {
        case entityType = "entity_type", entityID = "entity_id", entityName = "entity_name", projectID = "project_id"
        case deletedBy = "deleted_by", deletedAt = "deleted_at", canRestore = "can_restore"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let kind: PublicID = entity.type == .projects ? .project : .pipeline
        try container.encode(entity.type.singular, forKey: .entityType)
        try container.encode(kind.format(entity.id), forKey: .entityID)
        try container.encode(entity.name, forKey: .entityName)
        try container.encode(entity.projectID.map(PublicID.project.format), forKey: .projectID)
        try container.encode(entity.deletion.by, forKey: .deletedBy)
        try container.encode(entity.deletion.at, forKey: .deletedAt)
        try container.encode(entity.canRestore, forKey: .canRestore)
    }
}

/// Bytes as the Admin API reports them: megabytes, two decimals.
func megabytes(_ bytes: Int64) -> Double { (Double(bytes) / 10_485.76).rounded() / 100 }

/// Counts by entity type, as `by_type` and `breakdown` show them.
func countsByType(_ counts: [EntityType: Int]) -> [String: Int] {
    Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) })
}

/// `GET /api/v1/admin/deletion-stats`.
struct DeletionStatisticsResponse: Encodable, Sendable {
    let statistics: DeletionStatistics

    enum CodingKeys: String, CodingKey {
        case totalDeleted = "total_deleted", byType = "by_type", oldestDeletion = "oldest_deletion"
        case diskSpaceRecoverableMB = "disk_space_recoverable_mb"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(statistics.counts.values.reduce(0, +), forKey: .totalDeleted)
        try container.encode(countsByType(statistics.counts), forKey: .byType)
        try container.encode(statistics.oldest, forKey: .oldestDeletion)
        try container.encode(megabytes(statistics.bytes), forKey: .diskSpaceRecoverableMB)
    }
}

/// `POST /api/v1/admin/cleanup-old-deletions`.
struct CleanupResponse: Encodable, Sendable {
    let counts: PurgeCounts
    let dryRun: Bool

    enum CodingKeys: String, CodingKey {
        case dryRun = "dry_run", entitiesToDelete = "entities_to_delete", entitiesDeleted = "entities_deleted"
        case diskSpaceToFreeMB = "disk_space_to_free_mb", breakdown, versions, runs
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let total = counts.entities.values.reduce(0, +)
        try container.encode(dryRun, forKey: .dryRun)
        try container.encode(total, forKey: .entitiesToDelete)
        try container.encode(dryRun ? 0 : total, forKey: .entitiesDeleted)
        try container.encode(megabytes(counts.bytes), forKey: .diskSpaceToFreeMB)
        try container.encode(countsByType(counts.entities), forKey: .breakdown)
        try container.encode(counts.versions, forKey: .versions)
        try container.encode(counts.runs, forKey: .runs)
    }
}

/// `POST /api/v1/admin/{projects|pipelines}/{id}/restore`.
struct RestoreResponse: Encodable, Sendable {
    let restoration: Restoration
    let kind: PublicID

    enum CodingKeys: String, CodingKey {
        case projectID = "project_id", pipelineID = "pipeline_id", restored, related = "related_entities_restored", restoredAt = "restored_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind.format(restoration.id), forKey: kind == .project ? .projectID : .pipelineID)
        try container.encode(true, forKey: .restored)
        try container.encode(kind == .project ? ["pipelines": restoration.pipelines.count] : [:], forKey: .related)
        try container.encode(restoration.at, forKey: .restoredAt)
    }
}

/// `DELETE /api/v1/admin/projects/{id}/permanent`.
struct PurgeResponse: Encodable, Sendable {
    let projectID: Int64
    let counts: PurgeCounts

    enum CodingKeys: String, CodingKey {
        case projectID = "project_id", permanentlyDeleted = "permanently_deleted", cascadeDeleted = "cascade_deleted"
        case diskSpaceFreedMB = "disk_space_freed_mb"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(PublicID.project.format(projectID), forKey: .projectID)
        try container.encode(true, forKey: .permanentlyDeleted)
        try container.encode(["pipelines": counts.entities[.pipelines] ?? 0, "versions": counts.versions, "runs": counts.runs], forKey: .cascadeDeleted)
        try container.encode(megabytes(counts.bytes), forKey: .diskSpaceFreedMB)
    }
}
