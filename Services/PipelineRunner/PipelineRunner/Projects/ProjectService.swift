import Foundation
import Platform
import SharedModels

/// The body of `POST /api/v1/projects` and `PUT /api/v1/projects/{id}` (for PUT every field is optional).
struct ProjectRequest: Decodable, Sendable {
    var name: String?
    var description: String?
}

/// The rules of the Projects API: names unique among live projects, deletion taking the pipelines along.
struct ProjectService: Sendable {
    let projects: any ProjectRepository
    let announcer: Announcer

    /// Creates a project; 422 for a bad name or description, 409 for a name a live project has.
    func create(_ request: ProjectRequest, by actor: String?) async throws -> Project {
        let (name, description) = try Self.validated(name: request.name, description: request.description ?? "")
        let project = try await projects.create(name: name, description: description, createdBy: actor)
        await announcer.audit("project.create", PublicID.project.format(project.id), by: actor, details: ["name": .string(name)])
        return project
    }

    /// The live project, or 404.
    func find(_ id: Int64) async throws -> Project {
        guard let project = try await projects.find(id: id) else { throw APIError.notFound("project", id: PublicID.project.format(id)) }
        return project
    }

    /// One page of live projects.
    func list(limit: Int, offset: Int) async throws -> Listing<Project> {
        let page = try await projects.list(limit: limit, offset: offset)
        return Listing(items: page.items, total: page.total, limit: limit, offset: offset)
    }

    /// Changes the fields given; 404, 409 or 422 as ``create(_:by:)``.
    func update(_ id: Int64, _ request: ProjectRequest, by actor: String?) async throws -> Project {
        let existing = try await find(id)
        let (name, description) = try Self.validated(name: request.name ?? existing.name, description: request.description ?? existing.description)
        guard let project = try await projects.update(id: id, name: name, description: description) else {
            throw APIError.notFound("project", id: PublicID.project.format(id))
        }
        await announcer.audit("project.update", PublicID.project.format(id), by: actor)
        return project
    }

    /// Soft-deletes the project and its pipelines, whose schedules the scheduler then disables.
    func delete(_ id: Int64, by actor: String?) async throws {
        guard let pipelines = try await projects.softDelete(id: id, deletion: Deletion(at: Date(), by: actor)) else {
            throw APIError.notFound("project", id: PublicID.project.format(id))
        }
        await announcer.audit("project.delete", PublicID.project.format(id), by: actor, details: ["pipelines": .number(Double(pipelines.count))])
        await announcer.pipelines(.deleted, pipelines, projectID: id)
    }

    /// A project's name (trimmed) and description, or the 422 naming what is wrong.
    static func validated(name: String?, description: String) throws -> (String, String) {
        guard let name else { throw APIError.validation(field: "name", reason: "is required") }
        guard TextRules.isName(name) else {
            throw APIError.validation(field: "name", reason: "must be 1 to 200 characters without control characters")
        }
        guard description.count <= 2000, !description.unicodeScalars.contains(where: { $0.value == 0 }) else {
            throw APIError.validation(field: "description", reason: "must be at most 2000 characters")
        }
        return (name.trimmingCharacters(in: .whitespaces), description)
    }
}
