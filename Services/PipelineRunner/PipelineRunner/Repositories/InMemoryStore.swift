import Foundation
import Platform
import SharedModels

/// Projects, pipelines, versions and runs in memory, for unit tests of the service rules. One actor serves all
/// four repositories because their cascades (a project's deletion takes its pipelines along) cross them, as the
/// PostgreSQL implementations' transactions do.
actor InMemoryStore: ProjectRepository, PipelineRepository, RunRepository, DeletionRepository {
    private struct StoredProject {
        var project: Project
        var deletion: Deletion?
    }

    private struct StoredPipeline {
        var pipeline: Pipeline
        var deletion: Deletion?
        var deletedWithProject = false
    }

    private var projects: [Int64: StoredProject] = [:]
    private var pipelines: [Int64: StoredPipeline] = [:]
    private var versionList: [Int64: [PipelineVersion]] = [:]
    private var runList: [Int64: Run] = [:]
    private var logList: [Int64: [RunLogEntry]] = [:]
    /// One sequence per kind, as PostgreSQL has: an id of the wrong kind must find nothing for the right reason.
    private var nextIDs: [PublicID: Int64] = [:]

    init() {}

    private func makeID(_ kind: PublicID) -> Int64 {
        defer { nextIDs[kind, default: 1] += 1 }
        return nextIDs[kind, default: 1]
    }

    /// As ``stopRuns(of:at:using:tables:)`` does for PostgreSQL.
    private func stopRuns(of pipelineIDs: [Int64], at: Date) {
        for (id, run) in runList where run.pipelineID.map(pipelineIDs.contains) ?? false && !run.status.isFinished {
            runList[id]?.cancelRequestedAt = run.cancelRequestedAt ?? at
            if run.status == .queued {
                runList[id]?.status = .cancelled
                runList[id]?.finishedAt = at
            }
        }
    }

    // MARK: Projects

    private func liveProject(_ id: Int64) -> Project? {
        guard let stored = projects[id], stored.deletion == nil else { return nil }
        var project = stored.project
        project.pipelineCount = pipelines.values.filter { $0.pipeline.projectID == id && $0.deletion == nil }.count
        return project
    }

    private func checkProjectName(_ name: String, except id: Int64? = nil) throws {
        if projects.values.contains(where: { $0.deletion == nil && $0.project.id != id && $0.project.name.lowercased() == name.lowercased() }) {
            throw DuplicateName(kind: "project", name: name)
        }
    }

    func create(name: String, description: String, createdBy: String?) async throws -> Project {
        try checkProjectName(name)
        let now = Date()
        let project = Project(id: makeID(.project), name: name, description: description, pipelineCount: 0, createdBy: createdBy, createdAt: now, updatedAt: now)
        projects[project.id] = StoredProject(project: project)
        return project
    }

    func find(id: Int64) async throws -> Project? { liveProject(id) }

    func list(limit: Int, offset: Int) async throws -> (items: [Project], total: Int) {
        let live = projects.keys.sorted().compactMap(liveProject)
        return (Array(live.dropFirst(offset).prefix(limit)), live.count)
    }

    func update(id: Int64, name: String, description: String) async throws -> Project? {
        guard liveProject(id) != nil else { return nil }
        try checkProjectName(name, except: id)
        projects[id]?.project.name = name
        projects[id]?.project.description = description
        projects[id]?.project.updatedAt = Date()
        return liveProject(id)
    }

    func softDelete(id: Int64, deletion: Deletion) async throws -> [Int64]? {
        guard liveProject(id) != nil else { return nil }
        projects[id]?.deletion = deletion
        var taken: [Int64] = []
        for (pipelineID, stored) in pipelines where stored.pipeline.projectID == id && stored.deletion == nil {
            pipelines[pipelineID]?.deletion = deletion
            pipelines[pipelineID]?.deletedWithProject = true
            taken.append(pipelineID)
        }
        stopRuns(of: taken, at: deletion.at)
        return taken.sorted()
    }

    // MARK: Pipelines

    private func livePipeline(_ id: Int64) -> Pipeline? {
        guard let stored = pipelines[id], stored.deletion == nil, liveProject(stored.pipeline.projectID) != nil else { return nil }
        var pipeline = stored.pipeline
        pipeline.lastRun = runList.values.filter { $0.pipelineID == id }.max { ($0.queuedAt, $0.id) < ($1.queuedAt, $1.id) }
        return pipeline
    }

    private func checkPipelineName(_ name: String, project: Int64, except id: Int64? = nil) throws {
        if pipelines.values.contains(where: {
            $0.deletion == nil && $0.pipeline.id != id && $0.pipeline.projectID == project
                && $0.pipeline.specification.name.lowercased() == name.lowercased()
        }) {
            throw DuplicateName(kind: "pipeline", name: name)
        }
    }

    func create(projectID: Int64, specification: PipelineSpecification, createdBy: String?) async throws -> Pipeline? {
        guard liveProject(projectID) != nil else { return nil }
        try checkPipelineName(specification.name, project: projectID)
        let now = Date()
        let pipeline = Pipeline(id: makeID(.pipeline), projectID: projectID, status: .draft, version: 1, specification: specification,
                                createdBy: createdBy, createdAt: now, updatedAt: now)
        pipelines[pipeline.id] = StoredPipeline(pipeline: pipeline)
        versionList[pipeline.id] = [PipelineVersion(pipelineID: pipeline.id, version: 1, specification: specification, change: "created",
                                                    createdBy: createdBy, createdAt: now)]
        return livePipeline(pipeline.id)
    }

    func find(id: Int64) async throws -> Pipeline? { livePipeline(id) }

    func list(_ filter: PipelineFilter) async throws -> (items: [Pipeline], total: Int) {
        let matching = pipelines.keys.sorted().compactMap(livePipeline).filter { pipeline in
            (filter.projectID.map { $0 == pipeline.projectID } ?? true) && (filter.status.map { $0 == pipeline.status } ?? true)
        }
        return (Array(matching.dropFirst(filter.offset).prefix(filter.limit)), matching.count)
    }

    func addVersion(id: Int64, basedOn: Int, projectID: Int64, specification: PipelineSpecification, change: String,
                    createdBy: String?) async throws -> Pipeline? {
        guard let current = livePipeline(id), liveProject(projectID) != nil else { return nil }
        guard current.version == basedOn else { throw VersionConflict() }
        try checkPipelineName(specification.name, project: projectID, except: id)
        let now = Date()
        let version = current.version + 1
        pipelines[id]?.pipeline.version = version
        pipelines[id]?.pipeline.projectID = projectID
        pipelines[id]?.pipeline.specification = specification
        pipelines[id]?.pipeline.updatedAt = now
        versionList[id, default: []].append(PipelineVersion(pipelineID: id, version: version, specification: specification, change: change,
                                                            createdBy: createdBy, createdAt: now))
        return livePipeline(id)
    }

    func versions(id: Int64, limit: Int, offset: Int) async throws -> (items: [PipelineVersion], total: Int) {
        let all = (versionList[id] ?? []).reversed()
        return (Array(all.dropFirst(offset).prefix(limit)), all.count)
    }

    func version(id: Int64, number: Int) async throws -> PipelineVersion? {
        versionList[id]?.first { $0.version == number }
    }

    func markDeployed(id: Int64, version: Int, at: Date) async throws -> Pipeline? {
        guard livePipeline(id) != nil else { return nil }
        pipelines[id]?.pipeline.deployedVersion = version
        pipelines[id]?.pipeline.deployedAt = at
        pipelines[id]?.pipeline.status = .active
        return livePipeline(id)
    }

    func recordRun(pipelineID id: Int64, succeeded: Bool) async throws {
        guard let status = pipelines[id]?.pipeline.status, let next = PipelineStatus.after(status, runSucceeded: succeeded) else { return }
        pipelines[id]?.pipeline.status = next
    }

    func setStatus(id: Int64, _ status: PipelineStatus) async throws -> Pipeline? {
        guard livePipeline(id) != nil else { return nil }
        pipelines[id]?.pipeline.status = status
        return livePipeline(id)
    }

    func softDelete(id: Int64, deletion: Deletion) async throws -> Bool {
        guard livePipeline(id) != nil else { return false }
        pipelines[id]?.deletion = deletion
        pipelines[id]?.deletedWithProject = false
        stopRuns(of: [id], at: deletion.at)
        return true
    }

    // MARK: Runs

    private func visibleRun(_ id: Int64) -> Run? {
        guard let run = runList[id] else { return nil }
        if let pipelineID = run.pipelineID, livePipeline(pipelineID) == nil { return nil }
        return run
    }

    func create(_ new: NewRun, log: String) async throws -> (run: Run, created: Bool) {
        if let existing = runList.values.first(where: { $0.jobID == new.jobID }) { return (existing, false) }
        let run = Run(id: makeID(.run), jobID: new.jobID, kind: new.kind, pipelineID: new.pipelineID, pipelineVersion: new.pipelineVersion,
                      connectionID: new.connectionID, taskID: new.taskID, schedulerRunID: new.schedulerRunID, trigger: new.trigger,
                      status: .queued, parameters: new.parameters, requestedBy: new.requestedBy, queuedAt: new.queuedAt)
        runList[run.id] = run
        logList[run.id] = [RunLogEntry(at: new.queuedAt, level: .info, message: log)]
        return (run, true)
    }

    func find(id: Int64) async throws -> Run? { visibleRun(id) }

    func list(_ filter: RunFilter) async throws -> (items: [Run], total: Int) {
        let matching = runList.values.filter { run in run.pipelineID == filter.pipelineID && (filter.status.map { $0 == run.status } ?? true) }
            .sorted { ($0.queuedAt, $0.id) > ($1.queuedAt, $1.id) }
        return (Array(matching.dropFirst(filter.offset).prefix(filter.limit)), matching.count)
    }

    private func cancel(_ run: Run, at: Date, by: String?) -> Run {
        let changed = RunLifecycle.cancelled(run, at: at)
        guard changed != run else { return run }
        let who = by.map { " by \($0)" } ?? ""
        logList[run.id, default: []].append(RunLogEntry(
            at: at, level: .info, message: run.status == .queued ? "cancelled\(who) before it started" : "cancel requested\(who)"))
        runList[run.id] = changed
        return changed
    }

    func requestCancel(id: Int64, at: Date, by: String?) async throws -> (before: Run, after: Run)? {
        visibleRun(id).map { ($0, cancel($0, at: at, by: by)) }
    }

    func requestCancel(schedulerRunID: String, at: Date, by: String?) async throws -> (before: Run, after: Run)? {
        runList.values.first { $0.schedulerRunID == schedulerRunID }.map { ($0, cancel($0, at: at, by: by)) }
    }

    func fail(id: Int64, code: String, message: String, at: Date) async throws -> Run? {
        guard var run = runList[id], run.status == .queued else { return nil }
        run.status = .failed
        run.finishedAt = at
        run.errorCode = code
        run.error = message
        runList[id] = run
        logList[id, default: []].append(RunLogEntry(at: at, level: .error, message: message))
        return run
    }

    func logs(runID: Int64, limit: Int, offset: Int) async throws -> (items: [RunLogEntry], total: Int) {
        let all = logList[runID] ?? []
        return (Array(all.dropFirst(offset).prefix(limit)), all.count)
    }

    private var leases: [Int64: RunLifecycle.Lease] = [:]

    func claim(id: Int64, owner: String, leaseUntil: Date) async throws -> Run? {
        guard var run = runList[id], RunLifecycle.mayClaim(run, lease: leases[id], now: Date()) else { return nil }
        run.status = .running
        run.startedAt = run.startedAt ?? Date()
        runList[id] = run
        leases[id] = RunLifecycle.Lease(owner: owner, until: leaseUntil)
        return run
    }

    func holds(id: Int64, owner: String) async throws -> Bool {
        guard let run = runList[id], let lease = leases[id] else { return false }
        return RunLifecycle.mayFinish(run, lease: lease, owner: owner) && lease.until > Date()
    }

    func renew(id: Int64, owner: String, leaseUntil: Date) async throws -> Bool {
        guard let run = runList[id], RunLifecycle.mayRenew(run, lease: leases[id], owner: owner) else { return false }
        leases[id] = RunLifecycle.Lease(owner: owner, until: leaseUntil)
        return true
    }

    func note(id: Int64, compiledSQL: String?, log: String, level: RunLogEntry.Level) async throws {
        if let compiledSQL { runList[id]?.compiledSQL = compiledSQL }
        logList[id, default: []].append(RunLogEntry(at: Date(), level: level, message: log))
    }

    func finish(id: Int64, owner: String, _ outcome: RunOutcome, at: Date) async throws -> Run? {
        guard let run = runList[id], RunLifecycle.mayFinish(run, lease: leases[id], owner: owner) else { return nil }
        let ended = RunLifecycle.finished(run, with: outcome, at: at)
        runList[id] = ended
        leases[id] = nil
        return ended
    }

    // MARK: Deletions

    private var allDeleted: [DeletedEntity] {
        let deletedProjects = projects.values.compactMap { stored in
            stored.deletion.map { deletion in
                let taken = projects.values.contains { $0.deletion == nil && $0.project.name.lowercased() == stored.project.name.lowercased() }
                return DeletedEntity(type: .projects, id: stored.project.id, name: stored.project.name, deletion: deletion, canRestore: !taken)
            }
        }
        let deletedPipelines = pipelines.values.compactMap { stored in
            stored.deletion.map {
                DeletedEntity(type: .pipelines, id: stored.pipeline.id, name: stored.pipeline.specification.name,
                              projectID: stored.pipeline.projectID, deletion: $0,
                              canRestore: projects[stored.pipeline.projectID]?.deletion == nil && !stored.deletedWithProject)
            }
        }
        return (deletedProjects + deletedPipelines).sorted { ($1.deletion.at, $0.type, $0.id) < ($0.deletion.at, $1.type, $1.id) }
    }

    /// A stand-in for stored size: the JSON of the pipeline's versions and runs.
    private func bytes(ofPipelines ids: [Int64]) -> Int64 {
        let encoder = JSONEncoder()
        return ids.reduce(0) { total, id in
            total + (versionList[id] ?? []).reduce(0) { $0 + Int64((try? encoder.encode($1.specification).count) ?? 0) }
                + Int64(runList.values.filter { $0.pipelineID == id }.count * 200)
        }
    }

    func deleted(_ filter: DeletedFilter) async throws -> (items: [DeletedEntity], total: Int) {
        let matching = allDeleted.filter { entity in
            (filter.type.map { $0 == entity.type } ?? true) && (filter.deletedAfter.map { entity.deletion.at >= $0 } ?? true)
                && (filter.deletedBefore.map { entity.deletion.at < $0 } ?? true)
        }
        return (Array(matching.dropFirst(filter.offset).prefix(filter.limit)), matching.count)
    }

    func statistics() async throws -> DeletionStatistics {
        let deleted = allDeleted
        return DeletionStatistics(
            counts: Dictionary(uniqueKeysWithValues: EntityType.allCases.map { type in (type, deleted.filter { $0.type == type }.count) }),
            oldest: deleted.map(\.deletion.at).min(), bytes: bytes(ofPipelines: pipelines.values.filter { $0.deletion != nil }.map(\.pipeline.id)))
    }

    private func remove(pipelines ids: [Int64]) {
        for id in ids {
            pipelines[id] = nil
            versionList[id] = nil
            for run in runList.values where run.pipelineID == id {
                runList[run.id] = nil
                logList[run.id] = nil
            }
        }
    }

    private func counts(ofPipelines ids: [Int64]) -> PurgeCounts {
        PurgeCounts(versions: ids.reduce(0) { $0 + (versionList[$1]?.count ?? 0) },
                    runs: runList.values.filter { $0.pipelineID.map(ids.contains) ?? false }.count, bytes: bytes(ofPipelines: ids))
    }

    func purge(deletedBefore cutoff: Date, types: Set<EntityType>, dryRun: Bool) async throws -> PurgeCounts {
        let doomedProjects = types.contains(.projects)
            ? projects.values.filter { ($0.deletion?.at).map { $0 < cutoff } ?? false }.map(\.project.id) : []
        let doomedPipelines = pipelines.values.filter { stored in
            doomedProjects.contains(stored.pipeline.projectID)
                || (types.contains(.pipelines) && (stored.deletion?.at).map { $0 < cutoff } ?? false)
        }.map(\.pipeline.id)
        var counts = counts(ofPipelines: doomedPipelines)
        if types.contains(.projects) { counts.entities[.projects] = doomedProjects.count }
        if types.contains(.pipelines) { counts.entities[.pipelines] = doomedPipelines.count }
        if !dryRun {
            remove(pipelines: doomedPipelines)
            for id in doomedProjects { projects[id] = nil }
        }
        return counts
    }

    func restoreProject(id: Int64) async throws -> RestoreOutcome {
        guard let stored = projects[id] else { return .notFound }
        guard stored.deletion != nil else { return .notDeleted }
        try checkProjectName(stored.project.name, except: id)
        projects[id]?.deletion = nil
        var restored: [Int64] = []
        for (pipelineID, pipeline) in pipelines where pipeline.pipeline.projectID == id && pipeline.deletedWithProject {
            restoreOne(pipelineID)
            restored.append(pipelineID)
        }
        return .restored(pipelineIDs: restored.sorted())
    }

    private func restoreOne(_ id: Int64) {
        pipelines[id]?.deletion = nil
        pipelines[id]?.deletedWithProject = false
        if pipelines[id]?.pipeline.status == .active { pipelines[id]?.pipeline.status = .paused }
    }

    func restorePipeline(id: Int64) async throws -> RestoreOutcome {
        guard let stored = pipelines[id] else { return .notFound }
        guard stored.deletion != nil else { return .notDeleted }
        guard projects[stored.pipeline.projectID]?.deletion == nil else {
            return .refused("its project is deleted: restore the project, which brings back the pipelines deleted with it")
        }
        try checkPipelineName(stored.pipeline.specification.name, project: stored.pipeline.projectID, except: id)
        restoreOne(id)
        return .restored(pipelineIDs: [id])
    }

    func purgeProject(id: Int64) async throws -> PurgeCounts? {
        guard projects[id] != nil else { return nil }
        let ids = pipelines.values.filter { $0.pipeline.projectID == id }.map(\.pipeline.id)
        var counts = counts(ofPipelines: ids)
        counts.entities = [.projects: 1, .pipelines: ids.count]
        counts.livePipelineIDs = ids.filter { pipelines[$0]?.deletion == nil }.sorted()
        remove(pipelines: ids)
        projects[id] = nil
        return counts
    }
}
