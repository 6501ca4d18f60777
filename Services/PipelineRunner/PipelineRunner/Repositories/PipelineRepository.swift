import Foundation
import Platform
import SharedModels

/// Filters of `GET /api/v1/pipelines`.
struct PipelineFilter: Sendable, Equatable {
    var projectID: Int64?
    var status: PipelineStatus?
    var limit = 20
    var offset = 0
}

/// Storage of pipelines and their versions. Reads see live pipelines of live projects only, each with the
/// specification of its newest version and its latest run.
protocol PipelineRepository: Sendable {
    /// Stores version 1 of a new draft; `nil` when there is no live project. Throws ``DuplicateName``.
    func create(projectID: Int64, specification: PipelineSpecification, createdBy: String?) async throws -> Pipeline?
    /// The live pipeline `id` with its newest specification and latest run; `nil` for an unknown or deleted one.
    func find(id: Int64) async throws -> Pipeline?
    /// One page of live pipelines in id order, and how many match.
    func list(_ filter: PipelineFilter) async throws -> (items: [Pipeline], total: Int)
    /// Stores the next version (and moves the pipeline to `projectID`), unless the newest version is no longer
    /// `basedOn` (someone else changed it meanwhile: ``VersionConflict``). `nil` when the pipeline or the
    /// project is not live. Throws ``DuplicateName``.
    func addVersion(id: Int64, basedOn: Int, projectID: Int64, specification: PipelineSpecification, change: String,
                    createdBy: String?) async throws -> Pipeline?
    /// One page of the pipeline's versions, newest first, and how many there are.
    func versions(id: Int64, limit: Int, offset: Int) async throws -> (items: [PipelineVersion], total: Int)
    /// One stored version; `nil` when the pipeline has no such version.
    func version(id: Int64, number: Int) async throws -> PipelineVersion?
    /// Records that `version` is deployed and makes the pipeline active.
    func markDeployed(id: Int64, version: Int, at: Date) async throws -> Pipeline?
    /// Sets a live pipeline's status (`paused`, `active`).
    func setStatus(id: Int64, _ status: PipelineStatus) async throws -> Pipeline?
    /// Notes how a run of the pipeline ended: an `active` pipeline whose run failed becomes `failed`, a `failed` one
    /// whose run succeeded `active` again (``PipelineStatus/failedAfter(_:succeeded:)``); drafts and paused ones stay.
    func recordRun(pipelineID id: Int64, succeeded: Bool) async throws
    /// Soft-deletes a live pipeline; false when there is none.
    func softDelete(id: Int64, deletion: Deletion) async throws -> Bool
}

/// The newest version changed between reading a pipeline and storing its next version (409).
struct VersionConflict: Error, Sendable, APIErrorConvertible {
    var apiError: APIError {
        APIError(.conflict, code: .duplicateResource, message: "The pipeline was changed by someone else meanwhile; read it again and retry")
    }
}

/// Pipelines and versions in the service's schema.
struct PostgresPipelineRepository: PipelineRepository {
    let postgres: PostgresClient
    let tables: PipelineTables

    private var select: PostgresQuery {
        """
        SELECT p.id, p.project_id, p.status, p.version, p.deployed_version, p.deployed_at, p.created_by, p.created_at,
               p.updated_at, v.specification
        FROM \(tables.pipelines) p
        JOIN \(tables.versions) v ON v.pipeline_id = p.id AND v.version = p.version
        JOIN \(tables.projects) j ON j.id = p.project_id AND j.deleted_at IS NULL
        WHERE p.deleted_at IS NULL
        """
    }

    func create(projectID: Int64, specification: PipelineSpecification, createdBy: String?) async throws -> Pipeline? {
        let created: Int64? = try await PostgresError.renamingDuplicates(kind: "pipeline", name: specification.name) {
            try await postgres.withTransaction { connection in
                guard let row = try await connection.query("""
                    INSERT INTO \(tables.pipelines) (project_id, name, created_by)
                    SELECT id, \(specification.name), \(createdBy) FROM \(tables.projects) WHERE id = \(projectID) AND deleted_at IS NULL
                    FOR SHARE
                    RETURNING id
                    """).first else { return nil }
                let id = try row.decode("id", as: Int64.self)
                try await connection.query("""
                    INSERT INTO \(tables.versions) (pipeline_id, version, specification, change, created_by)
                    VALUES (\(id), 1, \(PostgresJSON(specification)), 'created', \(createdBy))
                    """)
                return id
            }
        }
        guard let created else { return nil }
        return try await find(id: created)
    }

    func find(id: Int64) async throws -> Pipeline? {
        try await withLastRuns(try await postgres.query("\(select) AND p.id = \(id)").map(Self.decode)).first
    }

    func list(_ filter: PipelineFilter) async throws -> (items: [Pipeline], total: Int) {
        let condition: PostgresQuery = """
            AND (\(filter.projectID)::bigint IS NULL OR p.project_id = \(filter.projectID))
            AND (\(filter.status?.rawValue)::text IS NULL OR p.status = \(filter.status?.rawValue))
            """
        let items = try await postgres.query("\(select) \(condition) ORDER BY p.id LIMIT \(filter.limit) OFFSET \(filter.offset)").map(Self.decode)
        let total = try await postgres.query("""
            SELECT count(*) AS total FROM \(tables.pipelines) p JOIN \(tables.projects) j ON j.id = p.project_id AND j.deleted_at IS NULL
            WHERE p.deleted_at IS NULL \(condition)
            """).first!.decode("total", as: Int.self)
        return (try await withLastRuns(items), total)
    }

    func addVersion(id: Int64, basedOn: Int, projectID: Int64, specification: PipelineSpecification, change: String,
                    createdBy: String?) async throws -> Pipeline? {
        let stored: Bool = try await PostgresError.renamingDuplicates(kind: "pipeline", name: specification.name) {
            try await postgres.withTransaction { connection in
                guard let row = try await connection.query("""
                    UPDATE \(tables.pipelines) p SET version = p.version + 1, project_id = \(projectID), name = \(specification.name),
                        updated_at = now()
                    WHERE p.id = \(id) AND p.deleted_at IS NULL
                      AND EXISTS (SELECT 1 FROM \(tables.projects) j WHERE j.id = \(projectID) AND j.deleted_at IS NULL FOR SHARE)
                    RETURNING p.version
                    """).first else { return false }
                let version = try row.decode("version", as: Int.self)
                guard version == basedOn + 1 else { throw VersionConflict() }
                try await connection.query("""
                    INSERT INTO \(tables.versions) (pipeline_id, version, specification, change, created_by)
                    VALUES (\(id), \(version), \(PostgresJSON(specification)), \(change), \(createdBy))
                    """)
                return true
            }
        }
        return stored ? try await find(id: id) : nil
    }

    func versions(id: Int64, limit: Int, offset: Int) async throws -> (items: [PipelineVersion], total: Int) {
        let items = try await postgres.query("""
            SELECT pipeline_id, version, specification, change, created_by, created_at FROM \(tables.versions)
            WHERE pipeline_id = \(id) ORDER BY version DESC LIMIT \(limit) OFFSET \(offset)
            """).map(Self.decodeVersion)
        let total = try await postgres.query("SELECT count(*) AS total FROM \(tables.versions) WHERE pipeline_id = \(id)")
            .first!.decode("total", as: Int.self)
        return (items, total)
    }

    func version(id: Int64, number: Int) async throws -> PipelineVersion? {
        try await postgres.query("""
            SELECT pipeline_id, version, specification, change, created_by, created_at FROM \(tables.versions)
            WHERE pipeline_id = \(id) AND version = \(number)
            """).map(Self.decodeVersion).first
    }

    func markDeployed(id: Int64, version: Int, at: Date) async throws -> Pipeline? {
        guard try await postgres.query("""
            UPDATE \(tables.pipelines) SET deployed_version = \(version), deployed_at = \(at), status = 'active', updated_at = now()
            WHERE id = \(id) AND deleted_at IS NULL RETURNING id
            """).count == 1 else { return nil }
        return try await find(id: id)
    }

    func recordRun(pipelineID id: Int64, succeeded: Bool) async throws {
        let (from, to): (PipelineStatus, PipelineStatus) = succeeded ? (.failed, .active) : (.active, .failed)
        try await postgres.query("UPDATE \(tables.pipelines) SET status = \(to.rawValue) WHERE id = \(id) AND status = \(from.rawValue)")
    }

    func setStatus(id: Int64, _ status: PipelineStatus) async throws -> Pipeline? {
        guard try await postgres.query("""
            UPDATE \(tables.pipelines) SET status = \(status.rawValue), updated_at = now() WHERE id = \(id) AND deleted_at IS NULL RETURNING id
            """).count == 1 else { return nil }
        return try await find(id: id)
    }

    func softDelete(id: Int64, deletion: Deletion) async throws -> Bool {
        try await postgres.withTransaction { connection in
            guard try await connection.query("""
                UPDATE \(tables.pipelines) SET deleted_at = \(deletion.at), deleted_by = \(deletion.by), deleted_with_project = false
                WHERE id = \(id) AND deleted_at IS NULL RETURNING id
                """).count == 1 else { return false }
            try await stopRuns(of: [id], at: deletion.at, using: connection, tables: tables)
            return true
        }
    }

    /// The pipelines with their latest runs, in one query for the whole page.
    private func withLastRuns(_ pipelines: [Pipeline]) async throws -> [Pipeline] {
        guard !pipelines.isEmpty else { return [] }
        let rows = try await postgres.query("""
            SELECT DISTINCT ON (pipeline_id) \(PostgresRunRepository.columns) FROM \(tables.runs)
            WHERE pipeline_id = ANY (\(pipelines.map { String($0.id) })::bigint[]) ORDER BY pipeline_id, queued_at DESC, id DESC
            """)
        var latest: [Int64: Run] = [:]
        for row in rows {
            let run = try PostgresRunRepository.decode(row)
            if let pipelineID = run.pipelineID { latest[pipelineID] = run }
        }
        return pipelines.map { pipeline in
            var pipeline = pipeline
            pipeline.lastRun = latest[pipeline.id]
            return pipeline
        }
    }

    /// A pipeline from a row of the pipelines-and-versions join.
    static func decode(_ row: PostgresRow) throws -> Pipeline {
        guard let status = PipelineStatus(rawValue: try row.decode("status")) else { throw PostgresDecodingError(PipelineStatus.self) }
        return Pipeline(
            id: try row.decode("id"), projectID: try row.decode("project_id"), status: status, version: try row.decode("version"),
            deployedVersion: try row.decode("deployed_version"), deployedAt: try row.decode("deployed_at"),
            specification: try row.decode("specification", as: PostgresJSON<PipelineSpecification>.self).value,
            createdBy: try row.decode("created_by"), createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
    }

    /// A version from a row of `pipeline_versions`.
    static func decodeVersion(_ row: PostgresRow) throws -> PipelineVersion {
        PipelineVersion(
            pipelineID: try row.decode("pipeline_id"), version: try row.decode("version"),
            specification: try row.decode("specification", as: PostgresJSON<PipelineSpecification>.self).value,
            change: try row.decode("change"), createdBy: try row.decode("created_by"), createdAt: try row.decode("created_at"))
    }
}
