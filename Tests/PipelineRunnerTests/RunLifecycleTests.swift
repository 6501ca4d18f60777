import Foundation
import Logging
@testable import PipelineRunner
import SharedModels
import Testing

@Suite struct RunLifecycleTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func run(_ status: RunStatus, cancelAsked: Bool = false) -> Run {
        Run(id: 7, jobID: "j", kind: .pipelineRun, trigger: "manual", status: status, parameters: [:], queuedAt: now,
            cancelRequestedAt: cancelAsked ? now : nil)
    }

    @Test func aQueuedRunOrOneWhoseLeaseExpiredCanBeClaimedNothingElse() {
        let live = RunLifecycle.Lease(owner: "a", until: now.addingTimeInterval(10))
        let dead = RunLifecycle.Lease(owner: "a", until: now.addingTimeInterval(-1))
        #expect(RunLifecycle.mayClaim(run(.queued), lease: nil, now: now))
        #expect(RunLifecycle.mayClaim(run(.running), lease: dead, now: now))
        #expect(RunLifecycle.mayClaim(run(.running), lease: nil, now: now))
        #expect(!RunLifecycle.mayClaim(run(.running), lease: live, now: now))
        #expect(!RunLifecycle.mayClaim(run(.queued, cancelAsked: true), lease: nil, now: now))
        #expect(!RunLifecycle.mayClaim(run(.running, cancelAsked: true), lease: dead, now: now))
        for ended in [RunStatus.success, .failed, .cancelled] {
            #expect(!RunLifecycle.mayClaim(run(ended), lease: dead, now: now), "\(ended)")
        }
    }

    @Test func onlyTheOwnerRenewsAndFinishesAndACancelStopsRenewals() {
        let lease = RunLifecycle.Lease(owner: "a", until: now)
        #expect(RunLifecycle.mayRenew(run(.running), lease: lease, owner: "a"))
        #expect(!RunLifecycle.mayRenew(run(.running), lease: lease, owner: "b"))
        #expect(!RunLifecycle.mayRenew(run(.running, cancelAsked: true), lease: lease, owner: "a"))
        #expect(!RunLifecycle.mayRenew(run(.success), lease: lease, owner: "a"))
        // A runner asked to cancel still records how its run ended.
        #expect(RunLifecycle.mayFinish(run(.running, cancelAsked: true), lease: lease, owner: "a"))
        #expect(!RunLifecycle.mayFinish(run(.running), lease: lease, owner: "b"))
        #expect(!RunLifecycle.mayFinish(run(.queued), lease: nil, owner: "a"))
    }

    @Test func aCancelEndsAQueuedRunMarksARunningOneAndLeavesAnEndedOne() {
        let queued = RunLifecycle.cancelled(run(.queued), at: now)
        #expect(queued.status == .cancelled && queued.finishedAt == now && queued.cancelRequestedAt == now)
        let running = RunLifecycle.cancelled(run(.running), at: now)
        #expect(running.status == .running && running.finishedAt == nil && running.cancelRequestedAt == now)
        #expect(RunLifecycle.cancelled(run(.success), at: now) == run(.success))
        #expect(RunLifecycle.cancelled(run(.running, cancelAsked: true), at: now.addingTimeInterval(5)) == run(.running, cancelAsked: true))
    }

    /// The executor over in-memory parts: a kind without work fails saying so; a run held by another runner is left alone;
    /// a run's result is kept.
    @Test func theExecutorRunsEachKindsWorkUnderItsLease() async throws {
        struct Found: RunWork {
            func perform(_ run: Run, progress: LoadProgress) async throws -> RunOutcome {
                RunOutcome(status: .success, rowsProcessed: 3, result: ["tables": 3])
            }
        }
        let store = InMemoryStore()
        let events = InMemoryEventSink()
        let executor = RunExecutor(runs: store, events: events, work: [.tableAnalysis: Found()], owner: "runner-a", lease: .seconds(30),
                                   logger: Logger(label: "test"))
        func queue(_ kind: JobRequest.Kind, _ job: String) async throws -> Int64 {
            try await store.create(NewRun(jobID: job, kind: kind, connectionID: 1, trigger: "schedule", parameters: [:], queuedAt: Date()),
                                   log: "queued").run.id
        }
        let analysis = try await queue(.tableAnalysis, "a")
        let ended = try #require(try await executor.execute(analysis))
        #expect(ended.status == .success && ended.rowsProcessed == 3 && ended.result == ["tables": 3])
        #expect(try await executor.execute(analysis) == nil, "an ended run is not run again")

        let refresh = try await queue(.datamartRefresh, "b")
        let refused = try #require(try await executor.execute(refresh))
        #expect(refused.status == .failed && refused.error == "datamart_refresh jobs are not run by this platform yet")
        #expect(events.events(of: RunEvent.self).filter { $0.runID == refused.publicID }.map(\.kind) == [.started, .failed])
        #expect(events.events(of: RunEvent.self).last?.errorCode == "PIPELINE_EXECUTION_ERROR")

        let held = try await queue(.tableAnalysis, "c")
        _ = try await store.claim(id: held, owner: "runner-b", leaseUntil: Date().addingTimeInterval(30))
        #expect(try await executor.execute(held) == nil)
        #expect(try await store.find(id: held)?.status == .running)
    }
}

@Suite struct PipelineStatusTests {
    @Test func onlyDeployedActivePipelinesFollowTheirRuns() {
        #expect(PipelineStatus.after(.active, runSucceeded: false) == .failed)
        #expect(PipelineStatus.after(.failed, runSucceeded: true) == .active)
        #expect(PipelineStatus.after(.failed, runSucceeded: false) == .failed)
        #expect(PipelineStatus.after(.active, runSucceeded: true) == .active)
        #expect(PipelineStatus.after(.paused, runSucceeded: false) == nil)
        #expect(PipelineStatus.after(.draft, runSucceeded: true) == nil)
    }
}
