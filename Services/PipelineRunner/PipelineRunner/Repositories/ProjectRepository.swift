import Foundation
import Platform
import SharedModels

/// A live project or pipeline already has this name (409).
struct DuplicateName: Error, Sendable, Equatable, APIErrorConvertible {
    /// `project`, or `pipeline` (names are unique within a project).
    var kind: String
    var name: String

    var apiError: APIError {
        let scope = kind == "pipeline" ? " in this project" : ""
        return APIError(.conflict, code: .duplicateResource, message: "A \(kind) named \(name) already exists\(scope)",
                        details: ["field": "name", "reason": .string("is taken")])
    }
}

/// Storage of projects. Reads see live projects only; deleted ones are the ``DeletionRepository``'s.
protocol ProjectRepository: Sendable {
    /// Throws ``DuplicateName`` when a live project has the name (case-insensitively).
    func create(name: String, description: String, createdBy: String?) async throws -> Project
    /// The live project `id`; `nil` for an unknown or deleted one.
    func find(id: Int64) async throws -> Project?
    /// One page of live projects in id order, and how many there are.
    func list(limit: Int, offset: Int) async throws -> (items: [Project], total: Int)
    /// Throws ``DuplicateName``; `nil` when there is no live project `id`.
    func update(id: Int64, name: String, description: String) async throws -> Project?
    /// Soft-deletes the project and its live pipelines in one transaction; the ids of those pipelines, `nil` when
    /// there is no live project `id`.
    func softDelete(id: Int64, deletion: Deletion) async throws -> [Int64]?
}

/// The tables of the `pipelines` schema, named once for every repository.
struct PipelineTables: Sendable {
    let projects: PostgresIdentifier
    let pipelines: PostgresIdentifier
    let versions: PostgresIdentifier
    let runs: PostgresIdentifier
    let runLogs: PostgresIdentifier

    init(schema: String) throws {
        projects = try PostgresIdentifier("projects", schema: schema)
        pipelines = try PostgresIdentifier("pipelines", schema: schema)
        versions = try PostgresIdentifier("pipeline_versions", schema: schema)
        runs = try PostgresIdentifier("runs", schema: schema)
        runLogs = try PostgresIdentifier("run_logs", schema: schema)
    }
}

extension PostgresError {
    /// Turns a unique violation of a name index into ``DuplicateName``.
    @discardableResult
    static func renamingDuplicates<T>(kind: String, name: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresError where error.code == .uniqueViolation && (error.constraint ?? "").hasSuffix("_live_name_key") {
            throw DuplicateName(kind: kind, name: name)
        }
    }
}

/// Ends the queued runs of pipelines that are being deleted and asks their running ones to stop: nothing runs for a
/// pipeline nobody can see any more.
func stopRuns(of pipelines: [Int64], at: Date, using connection: PostgresConnection, tables: PipelineTables) async throws {
    guard !pipelines.isEmpty else { return }
    try await connection.query("""
        UPDATE \(tables.runs) SET cancel_requested_at = coalesce(cancel_requested_at, \(at)),
            status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
            finished_at = CASE WHEN status = 'queued' THEN \(at) ELSE finished_at END
        WHERE pipeline_id = ANY (\(pipelines.map(String.init))::bigint[]) AND status IN ('queued', 'running')
        """)
}

/// Projects in the service's schema.
struct PostgresProjectRepository: ProjectRepository {
    let postgres: PostgresClient
    let tables: PipelineTables

    private var columns: PostgresQuery {
        """
        p.id, p.name, p.description, p.created_by, p.created_at, p.updated_at,
        (SELECT count(*) FROM \(tables.pipelines) l WHERE l.project_id = p.id AND l.deleted_at IS NULL) AS pipeline_count
        """
    }

    func create(name: String, description: String, createdBy: String?) async throws -> Project {
        try await PostgresError.renamingDuplicates(kind: "project", name: name) {
            try await postgres.query("""
                INSERT INTO \(tables.projects) AS p (name, description, created_by) VALUES (\(name), \(description), \(createdBy))
                RETURNING \(columns)
                """).map(Self.decode).first!
        }
    }

    func find(id: Int64) async throws -> Project? {
        try await postgres.query("SELECT \(columns) FROM \(tables.projects) p WHERE p.id = \(id) AND p.deleted_at IS NULL").map(Self.decode).first
    }

    func list(limit: Int, offset: Int) async throws -> (items: [Project], total: Int) {
        let items = try await postgres.query("""
            SELECT \(columns) FROM \(tables.projects) p WHERE p.deleted_at IS NULL ORDER BY p.id LIMIT \(limit) OFFSET \(offset)
            """).map(Self.decode)
        let total = try await postgres.query("SELECT count(*) AS total FROM \(tables.projects) WHERE deleted_at IS NULL")
            .first!.decode("total", as: Int.self)
        return (items, total)
    }

    func update(id: Int64, name: String, description: String) async throws -> Project? {
        try await PostgresError.renamingDuplicates(kind: "project", name: name) {
            try await postgres.query("""
                UPDATE \(tables.projects) p SET name = \(name), description = \(description), updated_at = now()
                WHERE p.id = \(id) AND p.deleted_at IS NULL RETURNING \(columns)
                """).map(Self.decode).first
        }
    }

    func softDelete(id: Int64, deletion: Deletion) async throws -> [Int64]? {
        try await postgres.withTransaction { connection in
            guard try await connection.query("""
                UPDATE \(tables.projects) SET deleted_at = \(deletion.at), deleted_by = \(deletion.by)
                WHERE id = \(id) AND deleted_at IS NULL RETURNING id
                """).count == 1 else { return nil }
            let pipelines = try await connection.query("""
                UPDATE \(tables.pipelines) SET deleted_at = \(deletion.at), deleted_by = \(deletion.by), deleted_with_project = true
                WHERE project_id = \(id) AND deleted_at IS NULL RETURNING id
                """).map { try $0.decode("id", as: Int64.self) }
            try await stopRuns(of: pipelines, at: deletion.at, using: connection, tables: tables)
            return pipelines
        }
    }

    /// A project from a row of ``columns``.
    static func decode(_ row: PostgresRow) throws -> Project {
        Project(id: try row.decode("id"), name: try row.decode("name"), description: try row.decode("description"),
                pipelineCount: try row.decode("pipeline_count"), createdBy: try row.decode("created_by"),
                createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"))
    }
}
