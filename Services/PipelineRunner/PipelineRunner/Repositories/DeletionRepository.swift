import Foundation
import Platform
import SharedModels

/// The kinds of entity that are soft-deleted (the `entity_type` of the Admin API).
enum EntityType: String, Codable, Sendable, CaseIterable, Comparable {
    case projects, pipelines

    /// `project`, as a single entity is named.
    var singular: String { String(rawValue.dropLast()) }

    /// `projects` or `project`.
    init?(name: String) {
        guard let type = EntityType(rawValue: name) ?? EntityType.allCases.first(where: { $0.singular == name }) else { return nil }
        self = type
    }

    static func < (lhs: EntityType, rhs: EntityType) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A soft-deleted project or pipeline.
struct DeletedEntity: Sendable, Equatable {
    var type: EntityType
    var id: Int64
    var name: String
    /// The project of a pipeline.
    var projectID: Int64?
    var deletion: Deletion
    /// False for a pipeline whose project is deleted too (restore the project) or that a project's deletion took
    /// along, and for a project whose name a live project has taken meanwhile.
    var canRestore: Bool
}

/// Filters of `GET /api/v1/admin/deleted-entities`.
struct DeletedFilter: Sendable, Equatable {
    var type: EntityType?
    var deletedAfter: Date?
    var deletedBefore: Date?
    var limit = 50
    var offset = 0
}

/// What deleted entities amount to.
struct DeletionStatistics: Sendable, Equatable {
    var counts: [EntityType: Int]
    var oldest: Date?
    /// Bytes of stored rows (versions, runs, logs) that removing them for good would free.
    var bytes: Int64
}

/// What a purge removed (or, in a dry run, would remove).
struct PurgeCounts: Sendable, Equatable {
    var entities: [EntityType: Int] = [:]
    var versions = 0
    var runs = 0
    var bytes: Int64 = 0
    /// Pipelines that were live until now (a permanent delete of a live project): their schedules must stop.
    var livePipelineIDs: [Int64] = []
}

/// The result of restoring something.
enum RestoreOutcome: Sendable, Equatable {
    /// Restored, with the pipelines restored along (for a project) and their ids.
    case restored(pipelineIDs: [Int64])
    /// There is no such entity, deleted or not.
    case notFound
    /// It is not deleted.
    case notDeleted
    /// It cannot be restored: the reason.
    case refused(String)
}

/// The admin's view of deleted entities: listing, statistics, restoring and removing for good. Operations that
/// cross projects and pipelines run in one transaction.
protocol DeletionRepository: Sendable {
    /// One page of deleted projects and pipelines, most recently deleted first, and how many match.
    func deleted(_ filter: DeletedFilter) async throws -> (items: [DeletedEntity], total: Int)
    /// Counts by kind, the oldest deletion, and the stored bytes removing them would free.
    func statistics() async throws -> DeletionStatistics
    /// Removes for good the entities of `types` deleted before `cutoff` (a project with all its pipelines);
    /// with `dryRun`, only counts.
    func purge(deletedBefore cutoff: Date, types: Set<EntityType>, dryRun: Bool) async throws -> PurgeCounts
    /// Restores a deleted project and the pipelines its deletion took along. Throws ``DuplicateName``.
    func restoreProject(id: Int64) async throws -> RestoreOutcome
    /// Restores a deleted pipeline of a live project. Throws ``DuplicateName``.
    func restorePipeline(id: Int64) async throws -> RestoreOutcome
    /// Removes a project (deleted or not) with its pipelines, versions and runs; `nil` when there is none.
    func purgeProject(id: Int64) async throws -> PurgeCounts?
}

/// The Admin API's storage in the service's schema.
struct PostgresDeletionRepository: DeletionRepository {
    let postgres: PostgresClient
    let tables: PipelineTables

    /// Deleted projects and pipelines as one relation.
    private var deletedEntities: PostgresQuery {
        """
        SELECT 'projects' AS type, d.id, d.name, NULL::bigint AS project_id, d.deleted_at, d.deleted_by,
               NOT EXISTS (SELECT 1 FROM \(tables.projects) l WHERE l.deleted_at IS NULL AND lower(l.name) = lower(d.name)) AS can_restore
        FROM \(tables.projects) d WHERE d.deleted_at IS NOT NULL
        UNION ALL
        SELECT 'pipelines', p.id, p.name, p.project_id, p.deleted_at, p.deleted_by, (j.deleted_at IS NULL AND NOT p.deleted_with_project)
        FROM \(tables.pipelines) p JOIN \(tables.projects) j ON j.id = p.project_id WHERE p.deleted_at IS NOT NULL
        """
    }

    /// Bytes of the versions, runs and logs of the pipelines `pipelineCondition` selects (over `p`).
    private func storedBytes(of pipelineCondition: PostgresQuery) -> PostgresQuery {
        """
        coalesce((SELECT sum(pg_column_size(v.*)) FROM \(tables.versions) v JOIN \(tables.pipelines) p ON p.id = v.pipeline_id WHERE \(pipelineCondition)), 0)
        + coalesce((SELECT sum(pg_column_size(r.*)) FROM \(tables.runs) r JOIN \(tables.pipelines) p ON p.id = r.pipeline_id WHERE \(pipelineCondition)), 0)
        + coalesce((SELECT sum(pg_column_size(l.*)) FROM \(tables.runLogs) l JOIN \(tables.runs) r ON r.id = l.run_id
                    JOIN \(tables.pipelines) p ON p.id = r.pipeline_id WHERE \(pipelineCondition)), 0)
        """
    }

    func deleted(_ filter: DeletedFilter) async throws -> (items: [DeletedEntity], total: Int) {
        let condition: PostgresQuery = """
            (\(filter.type?.rawValue)::text IS NULL OR type = \(filter.type?.rawValue))
            AND (\(filter.deletedAfter)::timestamptz IS NULL OR deleted_at >= \(filter.deletedAfter))
            AND (\(filter.deletedBefore)::timestamptz IS NULL OR deleted_at < \(filter.deletedBefore))
            """
        let items = try await postgres.query("""
            SELECT * FROM (\(deletedEntities)) d WHERE \(condition) ORDER BY deleted_at DESC, type, id LIMIT \(filter.limit) OFFSET \(filter.offset)
            """).map { row in
            DeletedEntity(
                type: EntityType(rawValue: try row.decode("type")) ?? .projects, id: try row.decode("id"), name: try row.decode("name"),
                projectID: try row.decode("project_id"), deletion: Deletion(at: try row.decode("deleted_at"), by: try row.decode("deleted_by")),
                canRestore: try row.decode("can_restore"))
        }
        let total = try await postgres.query("SELECT count(*) AS total FROM (\(deletedEntities)) d WHERE \(condition)").first!.decode("total", as: Int.self)
        return (items, total)
    }

    func statistics() async throws -> DeletionStatistics {
        let row = try await postgres.query("""
            SELECT count(*) FILTER (WHERE type = 'projects') AS projects, count(*) FILTER (WHERE type = 'pipelines') AS pipelines,
                   min(deleted_at) AS oldest, (\(storedBytes(of: "p.deleted_at IS NOT NULL")))::bigint AS bytes
            FROM (\(deletedEntities)) d
            """).first!
        return DeletionStatistics(
            counts: [.projects: try row.decode("projects"), .pipelines: try row.decode("pipelines")], oldest: try row.decode("oldest"),
            bytes: try row.decode("bytes"))
    }

    func purge(deletedBefore cutoff: Date, types: Set<EntityType>, dryRun: Bool) async throws -> PurgeCounts {
        let projects = types.contains(.projects)
        let pipelines = types.contains(.pipelines)
        // Projects deleted before the cutoff go with all their pipelines; pipelines deleted before it go alone.
        let doomedProjects: PostgresQuery = "\(projects) AND deleted_at < \(cutoff)"
        let doomedPipelines: PostgresQuery = """
            ((\(pipelines) AND p.deleted_at < \(cutoff))
             OR p.project_id IN (SELECT id FROM \(tables.projects) WHERE \(doomedProjects)))
            """
        return try await postgres.withTransaction { connection in
            let row = try await connection.query("""
                SELECT (SELECT count(*) FROM \(tables.projects) WHERE \(doomedProjects)) AS projects,
                       (SELECT count(*) FROM \(tables.pipelines) p WHERE p.deleted_at IS NOT NULL AND \(doomedPipelines)) AS pipelines,
                       (SELECT count(*) FROM \(tables.versions) v JOIN \(tables.pipelines) p ON p.id = v.pipeline_id WHERE \(doomedPipelines)) AS versions,
                       (SELECT count(*) FROM \(tables.runs) r JOIN \(tables.pipelines) p ON p.id = r.pipeline_id WHERE \(doomedPipelines)) AS runs,
                       (\(storedBytes(of: doomedPipelines)))::bigint AS bytes
                """).first!
            var counts = PurgeCounts(
                entities: [:], versions: try row.decode("versions"), runs: try row.decode("runs"), bytes: try row.decode("bytes"))
            for type in types { counts.entities[type] = try row.decode(type.rawValue) }
            if !dryRun {
                try await connection.query("DELETE FROM \(tables.pipelines) p WHERE \(doomedPipelines)")
                try await connection.query("DELETE FROM \(tables.projects) WHERE \(doomedProjects)")
            }
            return counts
        }
    }

    func restoreProject(id: Int64) async throws -> RestoreOutcome {
        try await postgres.withTransaction { connection in
            guard let row = try await connection.query("SELECT name, deleted_at FROM \(tables.projects) WHERE id = \(id) FOR UPDATE").first else {
                return .notFound
            }
            guard try row.decode("deleted_at", as: Date?.self) != nil else { return .notDeleted }
            let name = try row.decode("name", as: String.self)
            try await PostgresError.renamingDuplicates(kind: "project", name: name) {
                try await connection.query("UPDATE \(tables.projects) SET deleted_at = NULL, deleted_by = NULL, updated_at = now() WHERE id = \(id)")
            }
            let restored = try await connection.query("""
                UPDATE \(tables.pipelines) SET deleted_at = NULL, deleted_by = NULL, deleted_with_project = false,
                    status = CASE WHEN status = 'active' THEN 'paused' ELSE status END, updated_at = now()
                WHERE project_id = \(id) AND deleted_with_project RETURNING id
                """).map { try $0.decode("id", as: Int64.self) }
            return .restored(pipelineIDs: restored)
        }
    }

    func restorePipeline(id: Int64) async throws -> RestoreOutcome {
        try await postgres.withTransaction { connection in
            guard let row = try await connection.query("""
                SELECT p.name, p.deleted_at, p.deleted_with_project, j.deleted_at AS project_deleted_at
                FROM \(tables.pipelines) p JOIN \(tables.projects) j ON j.id = p.project_id WHERE p.id = \(id) FOR UPDATE OF p FOR SHARE OF j
                """).first else { return .notFound }
            guard try row.decode("deleted_at", as: Date?.self) != nil else { return .notDeleted }
            if try row.decode("project_deleted_at", as: Date?.self) != nil {
                return .refused("its project is deleted: restore the project, which brings back the pipelines deleted with it")
            }
            let name = try row.decode("name", as: String.self)
            try await PostgresError.renamingDuplicates(kind: "pipeline", name: name) {
                try await connection.query("""
                    UPDATE \(tables.pipelines) SET deleted_at = NULL, deleted_by = NULL, deleted_with_project = false,
                        status = CASE WHEN status = 'active' THEN 'paused' ELSE status END, updated_at = now()
                    WHERE id = \(id)
                    """)
            }
            return .restored(pipelineIDs: [id])
        }
    }

    func purgeProject(id: Int64) async throws -> PurgeCounts? {
        try await postgres.withTransaction { connection in
            guard try await connection.query("SELECT id FROM \(tables.projects) WHERE id = \(id) FOR UPDATE").count == 1 else { return nil }
            let inProject: PostgresQuery = "p.project_id = \(id)"
            let row = try await connection.query("""
                SELECT (SELECT count(*) FROM \(tables.pipelines) p WHERE \(inProject)) AS pipelines,
                       (SELECT count(*) FROM \(tables.versions) v JOIN \(tables.pipelines) p ON p.id = v.pipeline_id WHERE \(inProject)) AS versions,
                       (SELECT count(*) FROM \(tables.runs) r JOIN \(tables.pipelines) p ON p.id = r.pipeline_id WHERE \(inProject)) AS runs,
                       (\(storedBytes(of: inProject)))::bigint AS bytes
                """).first!
            let live = try await connection.query("SELECT id FROM \(tables.pipelines) p WHERE \(inProject) AND p.deleted_at IS NULL")
                .map { try $0.decode("id", as: Int64.self) }
            try await connection.query("DELETE FROM \(tables.projects) WHERE id = \(id)")
            return PurgeCounts(entities: [.projects: 1, .pipelines: try row.decode("pipelines")], versions: try row.decode("versions"),
                               runs: try row.decode("runs"), bytes: try row.decode("bytes"), livePipelineIDs: live)
        }
    }
}
