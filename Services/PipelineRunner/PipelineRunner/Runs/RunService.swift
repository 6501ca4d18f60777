import Foundation
import Logging
import Platform
import SharedModels

/// The rules of runs: a deployed pipeline's run recorded once per job, its job queued on `platform:jobs`,
/// cancels, and the jobs the scheduler publishes taken in as runs of their own.
struct RunService: Sendable {
    let runs: any RunRepository
    let pipelines: any PipelineRepository
    let events: any EventSink
    let announcer: Announcer
    let logger: Logger

    /// Queues a run of the deployed version: one run, one job.
    func run(pipeline id: Int64, parameters: [String: JSONValue], by actor: String?) async throws -> Run {
        guard let pipeline = try await pipelines.find(id: id) else { throw APIError.notFound("pipeline", id: PublicID.pipeline.format(id)) }
        guard let version = pipeline.deployedVersion else { throw PipelineService.notDeployed(pipeline) }
        try Self.validate(parameters)
        let new = NewRun(jobID: "manual:\(UUID().uuidString.lowercased())", kind: .pipelineRun, pipelineID: id, pipelineVersion: version,
                         trigger: "manual", parameters: parameters, requestedBy: actor, queuedAt: Date())
        let (run, _) = try await runs.create(new, log: "queued by \(actor ?? "an unknown user") (version \(version))")
        do {
            try await events.publish(JobRequest(jobID: run.jobID, kind: .pipelineRun, runID: run.publicID, pipelineID: pipeline.publicID,
                                                parameters: parameters, requestedAt: run.queuedAt))
        } catch {
            logger.error("could not queue the job of a run", metadata: ["run_id": "\(run.publicID)", "error": "\(error)"])
            _ = try? await runs.fail(id: run.id, code: ErrorCode.serviceUnavailable.rawValue, message: "the job could not be queued", at: Date())
            throw APIError(.serviceUnavailable, code: .serviceUnavailable, message: "The run could not be queued; try again shortly")
        }
        await announcer.audit("pipeline.run", pipeline.publicID, by: actor, details: ["run_id": .string(run.publicID)])
        return run
    }

    /// The run, or 404.
    func find(_ id: Int64) async throws -> Run {
        guard let run = try await runs.find(id: id) else { throw APIError.notFound("run", id: PublicID.run.format(id)) }
        return run
    }

    /// One page of a live pipeline's runs.
    func list(_ filter: RunFilter) async throws -> Listing<Run> {
        guard try await pipelines.find(id: filter.pipelineID) != nil else {
            throw APIError.notFound("pipeline", id: PublicID.pipeline.format(filter.pipelineID))
        }
        let page = try await runs.list(filter)
        return Listing(items: page.items, total: page.total, limit: filter.limit, offset: filter.offset)
    }

    /// One page of a run's log.
    func logs(_ id: Int64, limit: Int, offset: Int) async throws -> Listing<RunLogEntry> {
        _ = try await find(id)
        let page = try await runs.logs(runID: id, limit: limit, offset: offset)
        return Listing(items: page.items, total: page.total, limit: limit, offset: offset)
    }

    /// Cancels a queued run at once; a running one is asked to stop (its runner ends it as `cancelled`).
    /// 409 for a run that has already ended.
    func cancel(_ id: Int64, by actor: String?) async throws -> Run {
        let run = try await find(id)
        guard !run.status.isFinished else { throw Self.ended(run) }
        guard let change = try await runs.requestCancel(id: id, at: Date(), by: actor) else { throw APIError.notFound("run", id: run.publicID) }
        // It may have ended between the two reads.
        guard !change.before.status.isFinished else { throw Self.ended(change.before) }
        try await settle(change.after, previous: change.before)
        await announcer.audit("run.cancel", run.publicID, by: actor)
        return change.after
    }

    /// 409: the run has ended and cannot be cancelled.
    static func ended(_ run: Run) -> APIError {
        APIError(.conflict, code: .validationError, message: "Run \(run.publicID) has already ended (\(run.status.rawValue))",
                 details: ["field": "status", "reason": .string("is \(run.status.rawValue)")])
    }

    /// Takes in a job from `platform:jobs`. A job is recorded once however often it is delivered; a scheduler's
    /// job gets a run of its own that carries the scheduler's run id back in its events. Returns the run to
    /// execute, if there is one.
    @discardableResult
    func intake(_ job: JobRequest) async throws -> Int64? {
        let schedulerRunID = job.runID.hasPrefix("taskrun_") ? job.runID : nil
        if job.kind == .cancel {
            try await cancel(job: job, schedulerRunID: schedulerRunID)
            return nil
        }
        // Runs queued through this API are already recorded under their job id.
        guard schedulerRunID != nil else { return PublicID.run.parse(job.runID) }
        var new = NewRun(jobID: job.jobID, kind: job.kind, connectionID: job.connectionID.map(Int64.init), taskID: job.taskID.map(Int64.init),
                         schedulerRunID: schedulerRunID, trigger: "schedule", parameters: job.parameters, requestedBy: "scheduler",
                         queuedAt: job.requestedAt)
        var refusal: String?
        if job.kind == .pipelineRun {
            guard let text = job.pipelineID, let id = PublicID.pipeline.parse(text), let pipeline = try await pipelines.find(id: id) else {
                // No pipeline to hang a run on: the scheduler's run fails, with the reason.
                try await events.publish(RunEvent(runID: job.runID, jobID: job.jobID, taskID: job.taskID, schedulerRunID: schedulerRunID,
                                                  kind: .failed, error: "pipeline \(job.pipelineID ?? "(none)") does not exist"))
                return nil
            }
            new.pipelineID = id
            new.pipelineVersion = pipeline.deployedVersion
            if pipeline.deployedVersion == nil { refusal = "pipeline \(pipeline.publicID) is a draft: deploy it first" }
        }
        let (run, created) = try await runs.create(new, log: "queued by scheduler task \(job.taskID.map(String.init) ?? "?") (\(job.runID))")
        if created, let refusal,
           let failed = try await runs.fail(id: run.id, code: ErrorCode.pipelineExecutionError.rawValue, message: refusal, at: Date()) {
            try await settle(failed, previous: run)
            return nil
        }
        // Delivered again (its runner died): the lease decides whether it still needs a runner.
        return run.id
    }

    /// A `cancel` job: of the scheduler's run (a timeout, a replacing run) or of one of ours.
    private func cancel(job: JobRequest, schedulerRunID: String?) async throws {
        let change: (before: Run, after: Run)?
        if let schedulerRunID {
            change = try await runs.requestCancel(schedulerRunID: schedulerRunID, at: Date(), by: "scheduler")
        } else if let id = PublicID.run.parse(job.runID) {
            change = try await runs.requestCancel(id: id, at: Date(), by: nil)
        } else {
            change = nil
        }
        if let change { try await settle(change.after, previous: change.before) }
    }

    /// Tells the platform how a run ended, or asks its runner to stop it.
    private func settle(_ run: Run, previous: Run) async throws {
        if run.status == .cancelled && previous.status != .cancelled {
            try await events.publish(Self.event(.cancelled, of: run))
        } else if run.status == .failed && previous.status != .failed {
            try await events.publish(Self.event(.failed, of: run))
        } else if run.status == .running && previous.cancelRequestedAt == nil {
            try await events.publish(JobRequest(jobID: "cancel:\(run.publicID)", kind: .cancel, runID: run.publicID,
                                                pipelineID: run.pipelineID.map(PublicID.pipeline.format)))
        }
    }

    /// The run event of `run`, with the scheduler's ids when it started it.
    static func event(_ kind: RunEvent.Kind, of run: Run) -> RunEvent {
        RunEvent(runID: run.publicID, jobID: run.jobID, taskID: run.taskID.map(Int.init), schedulerRunID: run.schedulerRunID,
                 pipelineID: run.pipelineID.map(PublicID.pipeline.format), kind: kind,
                 rowsRead: run.rowsProcessed, rowsWritten: run.rowsProcessed, bytes: run.bytesProcessed,
                 stageTimingsMS: ["extract": run.metrics.extractionMS, "transform": run.metrics.transformationMS, "load": run.metrics.loadingMS],
                 error: run.error, errorCode: run.errorCode, occurredAt: run.finishedAt ?? Date())
    }

    /// Run parameters are bound as query parameters by the engine: names it can refer to as `:name`, scalar values.
    static func validate(_ parameters: [String: JSONValue]) throws {
        guard parameters.count <= 50 else { throw APIError.validation(field: "parameters", reason: "must have at most 50 entries") }
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) {
            let field = "parameters.\(name)"
            guard let first = name.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) || ("A"..."Z").contains(first),
                  name.count <= 63, name.unicodeScalars.allSatisfy({ $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) })
            else { throw APIError.validation(field: field, reason: "must be a name of letters, digits and _ (it is referred to as :name)") }
            switch value {
            case .string(let text) where text.count <= 10_000 && !text.unicodeScalars.contains(where: { $0.value == 0 }): continue
            case .number, .bool, .null: continue
            default: throw APIError.validation(field: field, reason: "must be a string (at most 10,000 characters), a number, true, false or null")
            }
        }
    }
}
