import Foundation
import Platform
import SharedModels

/// The answer to a deploy: `002`'s shape, with the deployment id in place of Airflow's DAG id.
struct Deployment: Sendable, Equatable {
    var pipeline: Pipeline
    var deployedAt: Date
    /// The scheduler task that runs the pipeline on its schedule, if it has one.
    var scheduleTaskID: Int64?
}

/// The rules of the Pipeline API: specifications validated whole, every change a new version, deployment
/// checked against the real databases, schedules kept in the scheduler.
struct PipelineService: Sendable {
    let pipelines: any PipelineRepository
    let projects: any ProjectRepository
    let catalog: any ConnectionCatalog
    let schedules: any PipelineSchedules
    let announcer: Announcer

    /// Stores a new draft (version 1) in a live project; 422 with every problem of the body.
    func create(_ body: [String: JSONValue], by actor: String?) async throws -> Pipeline {
        let projectID = try await liveProject(body["project_id"], required: true)!
        let specification = try await specification(of: body)
        guard let pipeline = try await pipelines.create(projectID: projectID, specification: specification, createdBy: actor) else {
            throw Self.missingProject(projectID)
        }
        await announcer.audit("pipeline.create", pipeline.publicID, by: actor, details: ["project_id": .string(PublicID.project.format(projectID))])
        await announcer.pipelines(.created, [pipeline.id], projectID: projectID)
        return pipeline
    }

    /// The live pipeline, or 404.
    func find(_ id: Int64) async throws -> Pipeline {
        guard let pipeline = try await pipelines.find(id: id) else { throw APIError.notFound("pipeline", id: PublicID.pipeline.format(id)) }
        return pipeline
    }

    /// One page of live pipelines.
    func list(_ filter: PipelineFilter) async throws -> Listing<Pipeline> {
        let page = try await pipelines.list(filter)
        return Listing(items: page.items, total: page.total, limit: filter.limit, offset: filter.offset)
    }

    /// Applies the fields of `body` to the newest version and stores the result as the next version; a body that
    /// changes nothing stores nothing.
    func update(_ id: Int64, _ body: [String: JSONValue], by actor: String?) async throws -> Pipeline {
        let existing = try await find(id)
        var merged = try Self.json(of: existing.specification)
        for (key, value) in body where key != "project_id" { merged[key] = value }
        let projectID = try await liveProject(body["project_id"], required: false) ?? existing.projectID
        let specification = try await specification(of: merged)
        if specification == existing.specification && projectID == existing.projectID { return existing }
        return try await store(specification, of: existing, projectID: projectID, change: "updated", by: actor)
    }

    /// One page of a live pipeline's versions, newest first.
    func versions(_ id: Int64, limit: Int, offset: Int) async throws -> Listing<PipelineVersion> {
        _ = try await find(id)
        let page = try await pipelines.versions(id: id, limit: limit, offset: offset)
        return Listing(items: page.items, total: page.total, limit: limit, offset: offset)
    }

    /// Makes an earlier version's specification the newest version.
    func rollback(_ id: Int64, to number: Int, by actor: String?) async throws -> Pipeline {
        let existing = try await find(id)
        guard let version = try await pipelines.version(id: id, number: number) else {
            throw APIError.validation(field: "version", reason: "pipeline \(existing.publicID) has no version \(number) (newest: \(existing.version))")
        }
        // Checked again: the rules may have tightened since that version was stored.
        let specification = try await specification(of: Self.json(of: version.specification))
        return try await store(specification, of: existing, projectID: existing.projectID, change: "rollback to version \(number)", by: actor)
    }

    /// Checks the newest version against the databases it names, then makes it the deployed one: the pipeline
    /// becomes active and its schedule (if any) a scheduler task.
    func deploy(_ id: Int64, by actor: String?) async throws -> Deployment {
        let pipeline = try await find(id)
        let problems = try await DeploymentCheck(catalog: catalog).problems(of: pipeline.specification)
        guard problems.isEmpty else { throw SpecificationProblems(problems, subject: "The deployment") }
        let task = try await applySchedule(of: pipeline.specification, pipeline: pipeline)
        let now = Date()
        let deployed: Pipeline?
        do {
            deployed = try await pipelines.markDeployed(id: id, version: pipeline.version, at: now)
        } catch {
            await restoreSchedule(of: pipeline)
            throw error
        }
        guard let deployed else {
            // Deleted meanwhile: its schedule must not outlive it.
            try? await schedules.unschedule(pipelineID: pipeline.publicID)
            throw APIError.notFound("pipeline", id: pipeline.publicID)
        }
        await announcer.audit("pipeline.deploy", pipeline.publicID, by: actor, details: ["version": .number(Double(pipeline.version))])
        await announcer.pipelines(.deployed, [id], projectID: pipeline.projectID)
        return Deployment(pipeline: deployed, deployedAt: now, scheduleTaskID: task?.taskID)
    }

    /// Stops the pipeline's scheduled runs; it can still be run by hand.
    func pause(_ id: Int64, by actor: String?) async throws -> Pipeline {
        let pipeline = try await deployed(id)
        _ = try await schedules.pause(pipelineID: pipeline.publicID)
        return try await setStatus(pipeline, .paused, action: "pipeline.pause", by: actor)
    }

    /// Starts the deployed version's schedule again.
    func resume(_ id: Int64, by actor: String?) async throws -> Pipeline {
        let pipeline = try await deployed(id)
        if let number = pipeline.deployedVersion, let version = try await pipelines.version(id: id, number: number) {
            // The schedule task may have been disabled with the pipeline (a delete and a restore): set it again.
            _ = try await applySchedule(of: version.specification, pipeline: pipeline)
        }
        _ = try await schedules.resume(pipelineID: pipeline.publicID)
        return try await setStatus(pipeline, .active, action: "pipeline.resume", by: actor)
    }

    /// Soft-deletes the pipeline; the scheduler disables its tasks when it hears of it.
    func delete(_ id: Int64, by actor: String?) async throws {
        let pipeline = try await find(id)
        guard try await pipelines.softDelete(id: id, deletion: Deletion(at: Date(), by: actor)) else {
            throw APIError.notFound("pipeline", id: pipeline.publicID)
        }
        await announcer.audit("pipeline.delete", pipeline.publicID, by: actor)
        await announcer.pipelines(.deleted, [id], projectID: pipeline.projectID)
    }

    // MARK: Helpers

    /// The specification of a body: parsed whole, then inline `{host, port, database}` endpoints resolved to the
    /// one connection that reaches them.
    private func specification(of body: [String: JSONValue]) async throws -> PipelineSpecification {
        var parsed = try SpecificationParser.parse(body)
        var problems: [SpecificationProblem] = []
        for endpoint in parsed.inlineEndpoints {
            let matches = try await catalog.matching(host: endpoint.host, port: endpoint.port, database: endpoint.database)
            let place = "\(endpoint.host):\(endpoint.port)/\(endpoint.database)"
            switch matches.count {
            case 1: parsed.resolve(endpoint, to: matches[0])
            case 0: problems.append(SpecificationProblem(path: endpoint.path + ".connection_id",
                                                         reason: "is required: no active connection reaches \(place)"))
            default: problems.append(SpecificationProblem(path: endpoint.path + ".connection_id",
                                                          reason: "is required: connections \(matches.map(String.init).joined(separator: ", ")) all reach \(place)"))
            }
        }
        guard problems.isEmpty else { throw SpecificationProblems(problems) }
        return parsed.specification
    }

    /// The id of the live project `value` names; `nil` when absent and not `required`.
    private func liveProject(_ value: JSONValue?, required: Bool) async throws -> Int64? {
        guard let value, value != .null else {
            if required { throw APIError.validation(field: "project_id", reason: "is required") }
            return nil
        }
        guard case .string(let text) = value, let id = PublicID.project.parse(text) else {
            throw APIError.validation(field: "project_id", reason: "must be a project id such as project_12")
        }
        guard try await projects.find(id: id) != nil else { throw Self.missingProject(id) }
        return id
    }

    private func store(_ specification: PipelineSpecification, of existing: Pipeline, projectID: Int64, change: String,
                       by actor: String?) async throws -> Pipeline {
        guard let pipeline = try await pipelines.addVersion(id: existing.id, basedOn: existing.version, projectID: projectID,
                                                            specification: specification, change: change, createdBy: actor) else {
            throw APIError.notFound("pipeline", id: existing.publicID)
        }
        await announcer.audit("pipeline.update", pipeline.publicID, by: actor,
                              details: ["version": .number(Double(pipeline.version)), "change": .string(change)])
        await announcer.pipelines(.updated, [pipeline.id], projectID: projectID)
        return pipeline
    }

    /// Puts back the schedule of the version deployed before a deploy that failed halfway.
    private func restoreSchedule(of pipeline: Pipeline) async {
        guard let number = pipeline.deployedVersion, let version = try? await pipelines.version(id: pipeline.id, number: number) else {
            try? await schedules.unschedule(pipelineID: pipeline.publicID)
            return
        }
        _ = try? await applySchedule(of: version.specification, pipeline: pipeline)
    }

    /// Creates, updates or removes the scheduler task of a specification's schedule.
    private func applySchedule(of specification: PipelineSpecification, pipeline: Pipeline) async throws -> ScheduledPipeline? {
        guard let cron = specification.schedule else {
            try await schedules.unschedule(pipelineID: pipeline.publicID)
            return nil
        }
        // The scheduler's names hold 200 characters; the pipeline's id, which makes the task's name unique, stays whole.
        let suffix = " (\(pipeline.publicID))"
        let name = String(specification.name.prefix(200 - suffix.count)) + suffix
        return try await schedules.schedule(pipelineID: pipeline.publicID, name: name, cron: cron)
    }

    private func deployed(_ id: Int64) async throws -> Pipeline {
        let pipeline = try await find(id)
        guard pipeline.deployedVersion != nil else { throw Self.notDeployed(pipeline) }
        return pipeline
    }

    private func setStatus(_ pipeline: Pipeline, _ status: PipelineStatus, action: String, by actor: String?) async throws -> Pipeline {
        guard let changed = try await pipelines.setStatus(id: pipeline.id, status) else { throw APIError.notFound("pipeline", id: pipeline.publicID) }
        await announcer.audit(action, pipeline.publicID, by: actor)
        return changed
    }

    /// The JSON object of a stored specification, for merging a partial update into it.
    static func json(of specification: PipelineSpecification) throws -> [String: JSONValue] {
        let data = try JSONEncoder.platform.encode(specification)
        return try JSONDecoder.platform.decode([String: JSONValue].self, from: data)
    }

    /// 422 on `project_id`: no live project of that id.
    static func missingProject(_ id: Int64) -> APIError {
        APIError.validation(field: "project_id", reason: "project \(PublicID.project.format(id)) does not exist")
    }

    /// 422: a draft has nothing deployed to run or pause.
    static func notDeployed(_ pipeline: Pipeline) -> APIError {
        APIError(.unprocessableContent, code: .validationError,
                 message: "Pipeline \(pipeline.publicID) is a draft: deploy it first (POST /api/v1/pipelines/\(pipeline.publicID)/deploy)",
                 details: ["field": "status", "reason": "is draft"])
    }
}
