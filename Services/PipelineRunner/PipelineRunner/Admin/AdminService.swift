import Foundation
import Platform
import SharedModels

/// The body of `POST /api/v1/admin/cleanup-old-deletions`.
struct CleanupRequest: Decodable, Sendable {
    var olderThanDays: Int?
    var entityTypes: [String]?
    /// A cleanup only counts unless this is false: removing for good is the one thing that cannot be undone.
    var dryRun: Bool?

    enum CodingKeys: String, CodingKey {
        case olderThanDays = "older_than_days", entityTypes = "entity_types", dryRun = "dry_run"
    }
}

/// What a restore brought back.
struct Restoration: Sendable, Equatable {
    var id: Int64
    var pipelines: [Int64]
    var at: Date
}

/// The Admin API: deleted entities listed and counted, restored with what was deleted along, removed for good.
struct AdminService: Sendable {
    let deletions: any DeletionRepository
    let announcer: Announcer

    /// One page of deleted projects and pipelines.
    func deleted(_ filter: DeletedFilter) async throws -> Listing<DeletedEntity> {
        let page = try await deletions.deleted(filter)
        return Listing(items: page.items, total: page.total, limit: filter.limit, offset: filter.offset)
    }

    /// What deleted entities amount to.
    func statistics() async throws -> DeletionStatistics { try await deletions.statistics() }

    /// Removes (or with `dry_run`, counts) what was deleted more than `older_than_days` ago.
    func cleanup(_ request: CleanupRequest, by actor: String?, now: Date = Date()) async throws -> (counts: PurgeCounts, dryRun: Bool) {
        let days = request.olderThanDays ?? 90
        guard (0...36_500).contains(days) else { throw APIError.validation(field: "older_than_days", reason: "must be an integer from 0 to 36500") }
        var types = Set(EntityType.allCases)
        if let names = request.entityTypes {
            types = []
            for (index, name) in names.enumerated() {
                guard let type = EntityType(name: name) else {
                    throw APIError.validation(field: "entity_types[\(index)]", reason: "must be one of \(EntityType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                types.insert(type)
            }
        }
        let dryRun = request.dryRun ?? true
        let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
        let counts = try await deletions.purge(deletedBefore: cutoff, types: types, dryRun: dryRun)
        if !dryRun {
            await announcer.audit("admin.cleanup", "deleted-entities", by: actor, details: [
                "older_than_days": .number(Double(days)), "entities": .number(Double(counts.entities.values.reduce(0, +))),
            ])
        }
        return (counts, dryRun)
    }

    /// Restores a deleted project with the pipelines its deletion took along; 404, or 409 when it is not deleted.
    func restoreProject(_ id: Int64, by actor: String?) async throws -> Restoration {
        let pipelines = try Self.restored(try await deletions.restoreProject(id: id), kind: .project, id: id)
        await announcer.audit("project.restore", PublicID.project.format(id), by: actor, details: ["pipelines": .number(Double(pipelines.count))])
        await announcer.pipelines(.restored, pipelines, projectID: id)
        return Restoration(id: id, pipelines: pipelines, at: Date())
    }

    /// Restores a deleted pipeline of a live project; 404, or 409 when it is not deleted or its project is.
    func restorePipeline(_ id: Int64, by actor: String?) async throws -> Restoration {
        let pipelines = try Self.restored(try await deletions.restorePipeline(id: id), kind: .pipeline, id: id)
        await announcer.audit("pipeline.restore", PublicID.pipeline.format(id), by: actor)
        await announcer.pipelines(.restored, pipelines, projectID: nil)
        return Restoration(id: id, pipelines: [], at: Date())
    }

    /// Removes a project, deleted or not, with everything in it; its live pipelines' schedules are disabled.
    func purgeProject(_ id: Int64, by actor: String?) async throws -> PurgeCounts {
        guard let counts = try await deletions.purgeProject(id: id) else { throw APIError.notFound("project", id: PublicID.project.format(id)) }
        await announcer.audit("project.purge", PublicID.project.format(id), by: actor, details: [
            "pipelines": .number(Double(counts.entities[.pipelines] ?? 0)), "runs": .number(Double(counts.runs)),
        ])
        await announcer.pipelines(.deleted, counts.livePipelineIDs, projectID: id)
        return counts
    }

    private static func restored(_ outcome: RestoreOutcome, kind: PublicID, id: Int64) throws -> [Int64] {
        let name = kind.format(id)
        switch outcome {
        case .restored(let pipelines): return pipelines
        case .notFound: throw APIError.notFound(kind.rawValue, id: name)
        case .notDeleted: throw APIError(.conflict, code: .validationError, message: "\(name) is not deleted")
        case .refused(let reason): throw APIError(.conflict, code: .validationError, message: "\(name) cannot be restored: \(reason)")
        }
    }
}
