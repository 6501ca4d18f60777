import Foundation
import Logging
@testable import PipelineRunner
import Platform
import SharedModels
import Testing

/// The services over in-memory parts: one store, a catalog with two connections, schedules and events.
struct ServiceFixture {
    let store = InMemoryStore()
    let catalog = InMemoryConnectionCatalog([
        .init(connection: CatalogConnection(id: 1, name: "sales", isActive: true), host: "db.example.com", port: 5432, database: "sales",
              tables: ["public.transactions": ["id", "amount", "created_at", "updated_at"]]),
        .init(connection: CatalogConnection(id: 2, name: "warehouse", isActive: true), host: "dw.example.com", port: 5432, database: "dw",
              tables: [:]),
    ])
    let schedules = InMemoryPipelineSchedules()
    let events = InMemoryEventSink()

    var announcer: Announcer { Announcer(events: events, service: "pipeline-runner", logger: Logger(label: "test")) }
    var projects: ProjectService { ProjectService(projects: store, announcer: announcer) }
    var pipelines: PipelineService {
        PipelineService(pipelines: store, projects: store, catalog: catalog, schedules: schedules, announcer: announcer)
    }
    var runs: RunService { RunService(runs: store, pipelines: store, events: events, announcer: announcer, logger: Logger(label: "test")) }
    var admin: AdminService { AdminService(deletions: store, announcer: announcer) }

    /// A project and a pipeline in it (the standard body), by `user_1`.
    func pipeline(named name: String = "Daily sales", project: String = "Sales") async throws -> Pipeline {
        let existing = try await projects.list(limit: 100, offset: 0).items.first { $0.name == project }
        var projectID = existing?.id
        if projectID == nil { projectID = try await projects.create(ProjectRequest(name: project), by: "user_1").id }
        return try await pipelines.create(pipelineBody {
            $0["project_id"] = .string(PublicID.project.format(projectID!))
            $0["name"] = .string(name)
        }, by: "user_1")
    }
}

/// The status and code of the API error `body` throws.
func apiError(_ body: () async throws -> Void) async -> APIError? {
    do {
        try await body()
        return nil
    } catch {
        return APIError.from(error)
    }
}

@Suite struct PipelineServiceTests {
    @Test func createUpdateVersionsRollback() async throws {
        let fixture = ServiceFixture()
        let created = try await fixture.pipeline()
        #expect(created.status == .draft && created.version == 1)

        let renamed = try await fixture.pipelines.update(created.id, ["name": "Renamed", "schedule": "0 4 * * *"], by: "user_2")
        #expect(renamed.version == 2)
        #expect(renamed.specification.name == "Renamed" && renamed.specification.schedule == "0 4 * * *")
        #expect(renamed.specification.sources == created.specification.sources)
        // Nothing changed, nothing stored.
        #expect(try await fixture.pipelines.update(created.id, ["name": "Renamed"], by: "user_2").version == 2)

        let versions = try await fixture.pipelines.versions(created.id, limit: 10, offset: 0)
        #expect(versions.items.map(\.version) == [2, 1])
        #expect(versions.items.map(\.change) == ["updated", "created"])

        let rolledBack = try await fixture.pipelines.rollback(created.id, to: 1, by: "user_3")
        #expect(rolledBack.version == 3)
        #expect(rolledBack.specification == created.specification)
        #expect(try await fixture.pipelines.versions(created.id, limit: 1, offset: 0).items.first?.change == "rollback to version 1")

        let missing = await apiError { _ = try await fixture.pipelines.rollback(created.id, to: 9, by: nil) }
        #expect(missing?.status == .unprocessableContent && missing?.details?["field"] == "version")
        // A refused update stores nothing.
        let refused = await apiError { _ = try await fixture.pipelines.update(created.id, ["transformations": [["type": "python"]]], by: nil) }
        #expect(refused?.code == .unsupportedTransformation)
        #expect(try await fixture.pipelines.find(created.id).version == 3)
    }

    @Test func namesAreUniqueWithinAProjectAndProjectsMustExist() async throws {
        let fixture = ServiceFixture()
        let first = try await fixture.pipeline()
        let duplicate = await apiError { _ = try await fixture.pipeline() }
        #expect(duplicate?.status == .conflict)
        _ = try await fixture.pipeline(project: "Other")
        let noProject = await apiError { _ = try await fixture.pipelines.create(pipelineBody { $0["project_id"] = "project_999" }, by: nil) }
        #expect(noProject?.details?["field"] == "project_id")
        let badProject = await apiError { _ = try await fixture.pipelines.create(pipelineBody { $0["project_id"] = 5 }, by: nil) }
        #expect(badProject?.status == .unprocessableContent)
        let stale = await apiError {
            _ = try await fixture.store.addVersion(id: first.id, basedOn: 0, projectID: first.projectID, specification: first.specification,
                                                   change: "x", createdBy: nil)
        }
        #expect(stale?.status == .conflict)
    }

    @Test func inlineEndpointsResolveToTheOneMatchingConnection() async throws {
        let fixture = ServiceFixture()
        let project = try await fixture.projects.create(ProjectRequest(name: "P"), by: nil)
        func body(host: String) -> [String: JSONValue] {
            pipelineBody {
                $0["project_id"] = .string(PublicID.project.format(project.id))
                $0["sources"] = [["id": "s", "type": "postgresql", "config": ["host": .string(host), "database": "sales", "table": "transactions"]]]
            }
        }
        let pipeline = try await fixture.pipelines.create(body(host: "DB.example.com"), by: nil)
        #expect(pipeline.specification.sources[0].connectionID == 1)
        let none = await apiError { _ = try await fixture.pipelines.create(body(host: "elsewhere"), by: nil) }
        #expect(none?.details?["field"] == "sources[0].connection_id")
        fixture.catalog.put(.init(connection: CatalogConnection(id: 3, name: "copy", isActive: true), host: "db.example.com", port: 5432,
                                  database: "sales", tables: [:]))
        let two = await apiError { _ = try await fixture.pipelines.create(body(host: "db.example.com"), by: nil) }
        #expect((two?.message ?? "").contains("connections 1, 3"))
    }

    @Test func deployListsEveryProblemThenSucceeds() async throws {
        let fixture = ServiceFixture()
        var pipeline = try await fixture.pipeline()
        pipeline = try await fixture.pipelines.update(pipeline.id, [
            "sources": [["id": "src", "type": "postgresql", "connection_id": 1, "config": ["table": "public.orders"]]],
            "targets": [["id": "dst", "type": "postgresql", "connection_id": 2, "config": ["table": "analytics.daily"]],
                        ["id": "dst2", "type": "postgresql", "connection_id": 7, "config": ["table": "t"]]],
        ], by: nil)
        let refused = try #require(await apiError { _ = try await fixture.pipelines.deploy(pipeline.id, by: nil) })
        #expect(refused.status == .unprocessableContent)
        guard case .array(let problems)? = refused.details?["problems"] else { Issue.record("no problems"); return }
        let fields = problems.compactMap { problem -> String? in
            guard case .object(let object) = problem, case .string(let field)? = object["field"] else { return nil }
            return field
        }
        #expect(fields == ["targets[1].connection_id", "sources[0].config.table", "targets[0].config.table"])
        #expect(try await fixture.pipelines.find(pipeline.id).status == .draft)

        // The tables appear; the second target goes.
        fixture.catalog.put(.init(connection: CatalogConnection(id: 1, name: "sales", isActive: true), host: "db.example.com", port: 5432,
                                  database: "sales", tables: ["public.orders": ["id", "amount", "created_at"]]))
        pipeline = try await fixture.pipelines.update(pipeline.id, [
            "targets": [["id": "dst", "type": "postgresql", "connection_id": 2, "config": ["table": "analytics.daily", "create_table": true]]],
        ], by: nil)
        let deployment = try await fixture.pipelines.deploy(pipeline.id, by: "user_1")
        #expect(deployment.pipeline.status == .active && deployment.pipeline.deployedVersion == pipeline.version)
        #expect(deployment.scheduleTaskID != nil)
        #expect(fixture.schedules.task(of: pipeline.publicID)?.cronSchedule == "0 2 * * *")
        #expect(fixture.events.events(of: PipelineEvent.self).map(\.kind).contains(.deployed))
    }

    @Test func aColumnThatIsNotThereFailsTheDeploy() async throws {
        let fixture = ServiceFixture()
        let pipeline = try await fixture.pipeline()
        _ = try await fixture.pipelines.update(pipeline.id, ["transformations": [["type": "deduplicate", "key": ["customer_id"]]],
                                                             "targets": [["id": "dst", "type": "postgresql", "connection_id": 2,
                                                                          "config": ["table": "t", "create_table": true]]]], by: nil)
        let refused = await apiError { _ = try await fixture.pipelines.deploy(pipeline.id, by: nil) }
        #expect(refused?.details?["field"] == "transformations[0].key[0]")
        let inactive = ServiceFixture()
        inactive.catalog.put(.init(connection: CatalogConnection(id: 2, name: "warehouse", isActive: false), host: "h", port: 1, database: "d", tables: [:]))
        let draft = try await inactive.pipeline()
        let refusedInactive = await apiError { _ = try await inactive.pipelines.deploy(draft.id, by: nil) }
        #expect((refusedInactive?.details?["reason"]).map { "\($0)".contains("inactive") } == true)
    }

    @Test func pauseAndResumeReachTheSchedule() async throws {
        let fixture = ServiceFixture()
        let draft = try await fixture.pipeline()
        let notDeployed = await apiError { _ = try await fixture.pipelines.pause(draft.id, by: nil) }
        #expect(notDeployed?.status == .unprocessableContent)
        _ = try await fixture.pipelines.deploy(draft.id, by: nil)
        #expect(try await fixture.pipelines.pause(draft.id, by: nil).status == .paused)
        #expect(fixture.schedules.task(of: draft.publicID)?.enabled == false)
        #expect(try await fixture.pipelines.resume(draft.id, by: nil).status == .active)
        #expect(fixture.schedules.task(of: draft.publicID)?.enabled == true)
        // A deployed version without a schedule removes the task.
        _ = try await fixture.pipelines.update(draft.id, ["schedule": nil], by: nil)
        _ = try await fixture.pipelines.deploy(draft.id, by: nil)
        #expect(fixture.schedules.task(of: draft.publicID) == nil)
    }

    @Test func deletingAProjectTakesItsPipelinesAndRestoringBringsThemBack() async throws {
        let fixture = ServiceFixture()
        let first = try await fixture.pipeline(named: "A")
        let second = try await fixture.pipeline(named: "B")
        try await fixture.pipelines.delete(second.id, by: "user_9")
        try await fixture.projects.delete(first.projectID, by: "user_9")
        #expect(try await fixture.pipelines.list(PipelineFilter()).total == 0)
        #expect(await apiError { _ = try await fixture.pipelines.find(first.id) }?.status == .notFound)
        #expect(await apiError { _ = try await fixture.projects.find(first.projectID) }?.status == .notFound)
        #expect(fixture.events.events(of: PipelineEvent.self).filter { $0.kind == .deleted }.map(\.pipelineID) == [second.publicID, first.publicID])

        let deleted = try await fixture.admin.deleted(DeletedFilter())
        #expect(deleted.total == 3)
        #expect(deleted.items.first { $0.id == second.id }?.canRestore == false)
        #expect(try await fixture.admin.deleted(DeletedFilter(type: .projects)).total == 1)
        let refused = await apiError { _ = try await fixture.admin.restorePipeline(first.id, by: nil) }
        #expect(refused?.status == .conflict)

        let restored = try await fixture.admin.restoreProject(first.projectID, by: "user_1")
        #expect(restored.pipelines == [first.id])
        #expect(try await fixture.pipelines.list(PipelineFilter()).items.map(\.id) == [first.id])
        _ = try await fixture.admin.restorePipeline(second.id, by: nil)
        #expect(try await fixture.pipelines.list(PipelineFilter()).total == 2)
        #expect(await apiError { _ = try await fixture.admin.restorePipeline(second.id, by: nil) }?.status == .conflict)
        #expect(await apiError { _ = try await fixture.admin.restoreProject(999, by: nil) }?.status == .notFound)
    }

    @Test func cleanupCountsInADryRunAndRemovesOtherwise() async throws {
        let fixture = ServiceFixture()
        let pipeline = try await fixture.pipeline()
        try await fixture.pipelines.delete(pipeline.id, by: nil)
        let later = Date().addingTimeInterval(2 * 86_400)
        let dry = try await fixture.admin.cleanup(CleanupRequest(olderThanDays: 1, entityTypes: ["pipelines"]), by: nil, now: later)
        #expect(dry.dryRun && dry.counts.entities[.pipelines] == 1 && dry.counts.versions == 1)
        #expect(try await fixture.admin.statistics().counts[.pipelines] == 1)
        let young = try await fixture.admin.cleanup(CleanupRequest(olderThanDays: 5, dryRun: false), by: nil, now: later)
        #expect(young.counts.entities.values.reduce(0, +) == 0)
        let done = try await fixture.admin.cleanup(CleanupRequest(olderThanDays: 1, dryRun: false), by: nil, now: later)
        #expect(!done.dryRun && done.counts.entities[.pipelines] == 1)
        #expect(try await fixture.admin.statistics().counts[.pipelines] == 0)
        let badType = await apiError { _ = try await fixture.admin.cleanup(CleanupRequest(entityTypes: ["artifacts"]), by: nil) }
        #expect(badType?.details?["field"] == "entity_types[0]")
    }

    @Test func aPermanentDeleteCascades() async throws {
        let fixture = ServiceFixture()
        let pipeline = try await fixture.pipeline()
        _ = try await fixture.pipelines.deploy(pipeline.id, by: nil)
        _ = try await fixture.runs.run(pipeline: pipeline.id, parameters: [:], by: nil)
        let counts = try await fixture.admin.purgeProject(pipeline.projectID, by: nil)
        #expect(counts.entities[.pipelines] == 1 && counts.runs == 1 && counts.versions == 1)
        #expect(counts.livePipelineIDs == [pipeline.id])
        #expect(await apiError { _ = try await fixture.admin.purgeProject(pipeline.projectID, by: nil) }?.status == .notFound)
        #expect(try await fixture.admin.deleted(DeletedFilter()).total == 0)
    }
}

@Suite struct RunServiceTests {
    @Test func aDraftCannotRunAndADeployedOneQueuesOneJob() async throws {
        let fixture = ServiceFixture()
        let pipeline = try await fixture.pipeline()
        #expect(await apiError { _ = try await fixture.runs.run(pipeline: pipeline.id, parameters: [:], by: nil) }?.status == .unprocessableContent)
        _ = try await fixture.pipelines.deploy(pipeline.id, by: nil)
        let run = try await fixture.runs.run(pipeline: pipeline.id, parameters: ["start_date": "2025-10-01"], by: "user_4")
        #expect(run.status == .queued && run.pipelineVersion == 1)
        let jobs = fixture.events.events(of: JobRequest.self)
        #expect(jobs.count == 1)
        #expect(jobs.first?.runID == run.publicID && jobs.first?.pipelineID == pipeline.publicID && jobs.first?.parameters["start_date"] == "2025-10-01")
        // The job coming back through the stream records nothing new.
        try await fixture.runs.intake(try #require(jobs.first))
        #expect(try await fixture.runs.list(RunFilter(pipelineID: pipeline.id)).total == 1)
        let badParameter = await apiError { _ = try await fixture.runs.run(pipeline: pipeline.id, parameters: ["1x": 1], by: nil) }
        #expect(badParameter?.details?["field"] == "parameters.1x")
        let nested = await apiError { _ = try await fixture.runs.run(pipeline: pipeline.id, parameters: ["a": ["b": 1]], by: nil) }
        #expect(nested?.details?["field"] == "parameters.a")
    }

    @Test func aJobThatCannotBeQueuedFailsItsRun() async throws {
        let fixture = ServiceFixture()
        let pipeline = try await fixture.pipeline()
        _ = try await fixture.pipelines.deploy(pipeline.id, by: nil)
        fixture.events.setFailing(true)
        #expect(await apiError { _ = try await fixture.runs.run(pipeline: pipeline.id, parameters: [:], by: nil) }?.status == .serviceUnavailable)
        #expect(try await fixture.runs.list(RunFilter(pipelineID: pipeline.id)).items.map(\.status) == [.failed])
    }

    @Test func aSchedulerJobDeliveredTwiceMakesOneRun() async throws {
        let fixture = ServiceFixture()
        let pipeline = try await fixture.pipeline()
        _ = try await fixture.pipelines.deploy(pipeline.id, by: nil)
        let job = JobRequest(jobID: "task_5:1700000000000000:1", kind: .pipelineRun, runID: "taskrun_12", taskID: 5, pipelineID: pipeline.publicID)
        try await fixture.runs.intake(job)
        try await fixture.runs.intake(job)
        let runs = try await fixture.runs.list(RunFilter(pipelineID: pipeline.id)).items
        #expect(runs.count == 1)
        #expect(runs.first?.schedulerRunID == "taskrun_12" && runs.first?.taskID == 5 && runs.first?.trigger == "schedule")

        // The scheduler cancels it (a timeout): cancelled, and the event carries the scheduler's run id back.
        try await fixture.runs.intake(JobRequest(jobID: "cancel:taskrun_12", kind: .cancel, runID: "taskrun_12"))
        let run = try await fixture.runs.find(try #require(runs.first).id)
        #expect(run.status == .cancelled)
        let event = try #require(fixture.events.events(of: RunEvent.self).last)
        #expect(event.kind == .cancelled && event.schedulerRunID == "taskrun_12" && event.runID == run.publicID)
        #expect(await apiError { _ = try await fixture.runs.cancel(run.id, by: nil) }?.status == .conflict)
    }

    @Test func aSchedulerJobForAMissingOrDraftPipelineFailsTheSchedulersRun() async throws {
        let fixture = ServiceFixture()
        try await fixture.runs.intake(JobRequest(jobID: "j1", kind: .pipelineRun, runID: "taskrun_1", taskID: 1, pipelineID: "pipeline_404"))
        let missing = try #require(fixture.events.events(of: RunEvent.self).last)
        #expect(missing.kind == .failed && missing.schedulerRunID == "taskrun_1" && (missing.error ?? "").contains("does not exist"))

        let draft = try await fixture.pipeline()
        try await fixture.runs.intake(JobRequest(jobID: "j2", kind: .pipelineRun, runID: "taskrun_2", taskID: 1, pipelineID: draft.publicID))
        let failed = try #require(fixture.events.events(of: RunEvent.self).last)
        #expect(failed.kind == .failed && failed.schedulerRunID == "taskrun_2" && (failed.error ?? "").contains("draft"))
        #expect(try await fixture.runs.list(RunFilter(pipelineID: draft.id)).items.map(\.status) == [.failed])
    }

    @Test func deletingAPipelineStopsItsRuns() async throws {
        let fixture = ServiceFixture()
        let pipeline = try await fixture.pipeline()
        _ = try await fixture.pipelines.deploy(pipeline.id, by: nil)
        let queued = try await fixture.runs.run(pipeline: pipeline.id, parameters: [:], by: nil)
        let running = try await fixture.runs.run(pipeline: pipeline.id, parameters: [:], by: nil)
        _ = try await fixture.store.claim(id: running.id, owner: "runner-1", leaseUntil: Date().addingTimeInterval(30))
        try await fixture.pipelines.delete(pipeline.id, by: nil)
        _ = try await fixture.admin.restorePipeline(pipeline.id, by: nil)
        #expect(try await fixture.runs.find(queued.id).status == .cancelled)
        let stopping = try await fixture.runs.find(running.id)
        #expect(stopping.status == .running && stopping.cancelRequestedAt != nil)
        // The runner sees the request when it renews its lease, and can no longer be given the run again.
        #expect(try await fixture.store.renew(id: running.id, owner: "runner-1", leaseUntil: Date().addingTimeInterval(30)) == false)
        #expect(try await fixture.store.claim(id: running.id, owner: "runner-2", leaseUntil: Date()) == nil)
    }

    @Test func cancellingAQueuedRunEndsItAndLogsIt() async throws {
        let fixture = ServiceFixture()
        let pipeline = try await fixture.pipeline()
        _ = try await fixture.pipelines.deploy(pipeline.id, by: nil)
        let run = try await fixture.runs.run(pipeline: pipeline.id, parameters: [:], by: "user_4")
        let cancelled = try await fixture.runs.cancel(run.id, by: "user_5")
        #expect(cancelled.status == .cancelled && cancelled.finishedAt != nil)
        let logs = try await fixture.runs.logs(run.id, limit: 10, offset: 0)
        #expect(logs.items.map(\.message) == ["queued by user_4 (version 1)", "cancelled by user_5 before it started"])
        #expect(fixture.events.events(of: RunEvent.self).last?.kind == .cancelled)
        #expect(fixture.events.events(of: AuditEvent.self).map(\.action).contains("run.cancel"))
    }
}
