import Foundation
import Hummingbird
import Platform
import SharedModels

/// `/api/v1/admin`: deleted entities. The gateway lets only admins through; the service checks again, since it
/// trusts no network.
struct AdminController: Sendable {
    let admin: AdminService

    /// Adds the routes under `/api/v1/admin`.
    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.get("deleted-entities") { request, context in
            _ = try context.requireUser(atLeast: .admin)
            var filter = DeletedFilter()
            if let text = request.uri.queryParameters.get("entity_type") {
                guard let type = EntityType(name: String(text)) else {
                    throw APIError.validation(field: "entity_type", reason: "must be one of \(EntityType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.type = type
            }
            filter.deletedAfter = try Self.date(request, "deleted_after")
            filter.deletedBefore = try Self.date(request, "deleted_before")
            (filter.limit, filter.offset) = try request.pagination(defaultLimit: 50, maxLimit: 500)
            let page = try await admin.deleted(filter)
            return try JSONResponse(page.map(DeletedEntityResponse.init))
        }
        group.get("deletion-stats") { _, context in
            _ = try context.requireUser(atLeast: .admin)
            return try JSONResponse(DeletionStatisticsResponse(statistics: try await admin.statistics()))
        }
        group.post("cleanup-old-deletions") { request, context in
            let user = try context.requireUser(atLeast: .admin)
            let body = try await request.decodeJSONIfPresent(as: CleanupRequest.self, context: context) ?? CleanupRequest()
            let (counts, dryRun) = try await admin.cleanup(body, by: user.userID)
            return try JSONResponse(CleanupResponse(counts: counts, dryRun: dryRun))
        }
        group.post("projects/:id/restore") { _, context in
            let user = try context.requireUser(atLeast: .admin)
            let restoration = try await admin.restoreProject(try PublicID.project.id(in: context), by: user.userID)
            return try JSONResponse(RestoreResponse(restoration: restoration, kind: .project))
        }
        group.post("pipelines/:id/restore") { _, context in
            let user = try context.requireUser(atLeast: .admin)
            let restoration = try await admin.restorePipeline(try PublicID.pipeline.id(in: context), by: user.userID)
            return try JSONResponse(RestoreResponse(restoration: restoration, kind: .pipeline))
        }
        group.delete("projects/:id/permanent") { _, context in
            let user = try context.requireUser(atLeast: .admin)
            let id = try PublicID.project.id(in: context)
            return try JSONResponse(PurgeResponse(projectID: id, counts: try await admin.purgeProject(id, by: user.userID)))
        }
    }

    /// An ISO 8601 date-time query parameter (`2025-10-02T10:00:00Z`, fractions allowed).
    static func date(_ request: Request, _ name: String) throws -> Date? {
        guard let raw = request.uri.queryParameters.get(name) else { return nil }
        let text = String(raw)
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = plain.date(from: text) ?? fractional.date(from: text) else {
            throw APIError.validation(field: name, reason: "must be an ISO 8601 date-time such as 2025-10-02T10:00:00Z")
        }
        return date
    }
}

/// `/internal/pipelines/{id}`: whether a pipeline exists, for the scheduler (tasks name only real pipelines).
struct InternalController: Sendable {
    let pipelines: PipelineService

    /// Adds `GET /internal/pipelines/{id}` to the root router.
    func addRoutes(to router: Router<PlatformRequestContext>) {
        router.get("internal/pipelines/:id") { _, context in
            _ = try context.requireService(in: nil)
            return try JSONResponse(PipelineResponse(pipeline: try await pipelines.find(try PublicID.pipeline.id(in: context))))
        }
    }
}
