import Foundation
import Hummingbird
import Platform
import SharedModels

extension PublicID {
    /// The id in the route parameter `id`; 404 for anything that is not an id of this kind.
    func id(in context: PlatformRequestContext) throws -> Int64 {
        let text = context.parameters.decoded("id")
        guard let id = parse(text) else { throw APIError.notFound(rawValue, id: text) }
        return id
    }
}

extension Request {
    /// `limit` (1–100, default 20) and `offset` of the Pipeline API's lists.
    func listPage() throws -> (limit: Int, offset: Int) { try pagination(defaultLimit: 20, maxLimit: 100) }

    /// A query parameter that must be one of the raw values of `T`.
    func choiceQuery<T: RawRepresentable & CaseIterable>(_ name: String, as type: T.Type) throws -> T? where T.RawValue == String {
        guard let text = uri.queryParameters.get(name) else { return nil }
        guard let value = T(rawValue: String(text)) else {
            throw APIError.validation(field: name, reason: "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}

/// `/api/v1/pipelines`: pipelines, their versions, deployment, schedules and runs.
struct PipelinesController: Sendable {
    let pipelines: PipelineService
    let runs: RunService

    /// Adds the routes under `/api/v1/pipelines`.
    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.get { request, _ in
            var filter = PipelineFilter()
            if let text = request.uri.queryParameters.get("project_id") {
                guard let id = PublicID.project.parse(String(text)) else {
                    throw APIError.validation(field: "project_id", reason: "must be a project id such as project_12")
                }
                filter.projectID = id
            }
            filter.status = try request.choiceQuery("status", as: PipelineStatus.self)
            (filter.limit, filter.offset) = try request.listPage()
            let page = try await pipelines.list(filter)
            return try JSONResponse(page.map { PipelineResponse(pipeline: $0) })
        }
        group.post { request, context in
            let body = try await request.decodeJSON(as: [String: JSONValue].self, context: context)
            let pipeline = try await pipelines.create(body, by: context.user?.userID)
            return try JSONResponse(PipelineResponse(pipeline: pipeline, detailed: true), status: .created)
        }
        group.get(":id") { _, context in
            try JSONResponse(PipelineResponse(pipeline: try await pipelines.find(try PublicID.pipeline.id(in: context)), detailed: true))
        }
        group.put(":id") { request, context in
            let id = try PublicID.pipeline.id(in: context)
            let body = try await request.decodeJSON(as: [String: JSONValue].self, context: context)
            return try JSONResponse(PipelineResponse(pipeline: try await pipelines.update(id, body, by: context.user?.userID), detailed: true))
        }
        group.delete(":id") { _, context in
            try await pipelines.delete(try PublicID.pipeline.id(in: context), by: context.user?.userID)
            return Response(status: .noContent)
        }
        group.get(":id/versions") { request, context in
            let (limit, offset) = try request.listPage()
            let page = try await pipelines.versions(try PublicID.pipeline.id(in: context), limit: limit, offset: offset)
            return try JSONResponse(page.map(VersionResponse.init))
        }
        group.post(":id/rollback") { request, context in
            let id = try PublicID.pipeline.id(in: context)
            let body = try await request.decodeJSON(as: RollbackRequest.self, context: context)
            guard (1...Int(Int32.max)).contains(body.version) else {
                throw APIError.validation(field: "version", reason: "must be an integer from 1 to \(Int32.max)")
            }
            return try JSONResponse(PipelineResponse(pipeline: try await pipelines.rollback(id, to: body.version, by: context.user?.userID), detailed: true))
        }
        group.post(":id/deploy") { _, context in
            try JSONResponse(DeploymentResponse(deployment: try await pipelines.deploy(try PublicID.pipeline.id(in: context), by: context.user?.userID)))
        }
        group.post(":id/pause") { _, context in
            try JSONResponse(PipelineResponse(pipeline: try await pipelines.pause(try PublicID.pipeline.id(in: context), by: context.user?.userID)))
        }
        group.post(":id/resume") { _, context in
            try JSONResponse(PipelineResponse(pipeline: try await pipelines.resume(try PublicID.pipeline.id(in: context), by: context.user?.userID)))
        }
        group.post(":id/run") { request, context in
            let id = try PublicID.pipeline.id(in: context)
            let body = try await request.decodeJSONIfPresent(as: RunRequest.self, context: context)
            let run = try await runs.run(pipeline: id, parameters: body?.parameters ?? [:], by: context.user?.userID)
            return try JSONResponse(RunQueuedResponse(run: run), status: .accepted)
        }
        group.get(":id/runs") { request, context in
            var filter = RunFilter(pipelineID: try PublicID.pipeline.id(in: context))
            filter.status = try request.choiceQuery("status", as: RunStatus.self)
            (filter.limit, filter.offset) = try request.listPage()
            let page = try await runs.list(filter)
            return try JSONResponse(page.map(RunResponse.init))
        }
    }

    /// `POST /pipelines/{id}/rollback`.
    struct RollbackRequest: Decodable {
        var version: Int
    }

    /// The optional body of `POST /pipelines/{id}/run`.
    struct RunRequest: Decodable {
        var parameters: [String: JSONValue]?
    }
}

/// `/api/v1/runs`: one run, its cancel and its log.
struct RunsController: Sendable {
    let runs: RunService

    /// Adds the routes under `/api/v1/runs`.
    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.get(":id") { _, context in
            try JSONResponse(RunResponse(run: try await runs.find(try PublicID.run.id(in: context))))
        }
        group.post(":id/cancel") { _, context in
            try JSONResponse(RunResponse(run: try await runs.cancel(try PublicID.run.id(in: context), by: context.user?.userID)))
        }
        group.get(":id/logs") { request, context in
            let (limit, offset) = try request.pagination(defaultLimit: 100, maxLimit: 1000)
            let page = try await runs.logs(try PublicID.run.id(in: context), limit: limit, offset: offset)
            return try JSONResponse(page.map(LogEntryResponse.init))
        }
    }
}

/// `/api/v1/projects`.
struct ProjectsController: Sendable {
    let projects: ProjectService

    /// Adds the routes under `/api/v1/projects`.
    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post { request, context in
            let body = try await request.decodeJSON(as: ProjectRequest.self, context: context)
            return try JSONResponse(ProjectResponse(project: try await projects.create(body, by: context.user?.userID)), status: .created)
        }
        group.get { request, _ in
            let (limit, offset) = try request.listPage()
            let page = try await projects.list(limit: limit, offset: offset)
            return try JSONResponse(page.map(ProjectResponse.init))
        }
        group.get(":id") { _, context in
            try JSONResponse(ProjectResponse(project: try await projects.find(try PublicID.project.id(in: context))))
        }
        group.put(":id") { request, context in
            let id = try PublicID.project.id(in: context)
            let body = try await request.decodeJSON(as: ProjectRequest.self, context: context)
            return try JSONResponse(ProjectResponse(project: try await projects.update(id, body, by: context.user?.userID)))
        }
        group.delete(":id") { _, context in
            try await projects.delete(try PublicID.project.id(in: context), by: context.user?.userID)
            return Response(status: .noContent)
        }
    }
}
