import Foundation
import Logging
import Platform
import SharedModels
import Synchronization

/// Rows and bytes a run has moved so far, counted as chunks reach the target and read by its progress events; every
/// ``milestoneRows`` rows it also signals that a progress event is due, so a fast run reports progress too.
final class LoadProgress: Sendable {
    /// Rows between two progress events, whatever the time between them.
    static let milestoneRows: Int64 = 100_000

    private let counts = Mutex<(rows: Int64, bytes: Int64)>((0, 0))
    private let signal: AsyncStream<Void>.Continuation
    /// One element each time the rows pass a multiple of ``milestoneRows`` (the latest only, if unread).
    let milestones: AsyncStream<Void>

    init() {
        (milestones, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    deinit { signal.finish() }

    /// Counts rows that moved (a chunk of COPY text, a ClickHouse block, an analysed table).
    func add(rows: Int64, bytes: Int64) {
        let (before, after) = counts.withLock { counts in
            let before = counts.rows
            counts = (counts.rows + rows, counts.bytes + bytes)
            return (before, counts.rows)
        }
        if after / Self.milestoneRows > before / Self.milestoneRows { signal.yield() }
    }

    /// Ends the milestones (the run's work is over).
    func finish() { signal.finish() }

    /// The counts so far.
    var current: (rows: Int64, bytes: Int64) { counts.withLock { $0 } }
}

/// Why a run failed, in words for its user: never credentials, never a query's parameters.
struct RunFailure: Error, Sendable {
    var code: ErrorCode
    var message: String

    init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A failure of the work itself (`PIPELINE_EXECUTION_ERROR`).
    init(_ message: String) {
        self.init(.pipelineExecutionError, message)
    }
}

/// What a runner does for one kind of job, inside the lease ``RunExecutor`` holds for it.
protocol RunWork: Sendable {
    /// Does the job's work. Throws ``RunFailure`` for a failure its user should read, `CancellationError` when
    /// the run was cancelled.
    func perform(_ run: Run, progress: LoadProgress) async throws -> RunOutcome
    /// Removes what a failed or cancelled attempt left behind (staging tables); called outside the cancelled task.
    func cleanUp(after run: Run) async
    /// Learns how the run ended, once that is recorded.
    func ended(_ run: Run) async
}

extension RunWork {
    func cleanUp(after run: Run) async {}
    func ended(_ run: Run) async {}
}

/// Executes runs of every job kind the same way: claims the run under a lease (so a job delivered twice never
/// runs twice at once), renews the lease every second while the work runs and publishes progress, stops the work
/// when a cancel is requested or the lease is lost, and records and announces how the run ended.
struct RunExecutor: Sendable {
    let runs: any RunRepository
    let events: any EventSink
    /// The work of each job kind this runner executes; a run of another kind fails, saying so.
    let work: [JobRequest.Kind: any RunWork]
    /// This runner's name in leases.
    let owner: String
    /// How long a lease lasts unless renewed (renewed every second); shorter than the job stream's visibility timeout.
    var lease: Duration = .seconds(30)
    let logger: Logger

    /// Runs `runID` if no other runner holds it; returns the run as it ended, or `nil` when it was not this runner's.
    @discardableResult
    func execute(_ runID: Int64) async throws -> Run? {
        guard let run = try await runs.claim(id: runID, owner: owner, leaseUntil: leaseEnd()) else { return nil }
        try await events.publish(RunService.event(.started, of: run))
        let started = ContinuousClock.now
        let progress = LoadProgress()
        let outcome: RunOutcome
        do {
            guard let work = work[run.kind] else {
                throw RunFailure("\(run.kind.rawValue) jobs are not run by this platform yet")
            }
            outcome = try await withLease(of: run, progress: progress) { try await work.perform(run, progress: progress) }
        } catch let error as RunFailure {
            outcome = RunOutcome(status: .failed, errorCode: error.code.rawValue, error: error.message)
        } catch is CancellationError {
            outcome = RunOutcome(status: .cancelled, error: "cancelled")
        } catch {
            outcome = RunOutcome(status: .failed, errorCode: ErrorCode.pipelineExecutionError.rawValue, error: CustomerDatabases.message(for: error))
        }
        // Cleaned up before the end is recorded, so a run seen ended has left nothing behind; and only while this
        // runner still holds it: what another runner now builds for the run has the same names.
        if outcome.status != .success, (try? await runs.holds(id: runID, owner: owner)) == true {
            await work[run.kind]?.cleanUp(after: run)
        }
        guard let ended = try await runs.finish(id: runID, owner: owner, outcome, at: Date()) else {
            logger.warning("a run was taken over while it ran", metadata: ["run_id": "\(run.publicID)"])
            return nil
        }
        let kind: RunEvent.Kind = switch ended.status {
        case .success: .completed
        case .cancelled: .cancelled
        default: .failed
        }
        try await runs.note(id: runID, compiledSQL: nil, log: "\(ended.status.rawValue) after \(started.duration(to: .now))"
                            + (ended.error.map { ": \($0)" } ?? ""), level: ended.status == .success ? .info : .error)
        await work[run.kind]?.ended(ended)
        try await events.publish(RunService.event(kind, of: ended))
        return ended
    }

    /// Runs `work` while renewing the lease every second and publishing progress every second and every
    /// ``LoadProgress/milestoneRows`` rows; a cancel request, or a lease that could not be renewed before it ran
    /// out, stops it. A renewal that fails (the platform's database is briefly away) is tried again the next second.
    private func withLease<T: Sendable>(of run: Run, progress: LoadProgress, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        @Sendable func report() async {
            var moving = run
            (moving.rowsProcessed, moving.bytesProcessed) = progress.current
            try? await events.publish(RunService.event(.progress, of: moving))
        }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                defer { progress.finish() }
                return try await work()
            }
            group.addTask {
                var renewed = ContinuousClock.now
                while true {
                    try await Task.sleep(for: .seconds(1))
                    do {
                        guard try await runs.renew(id: run.id, owner: owner, leaseUntil: leaseEnd()) else { throw CancellationError() }
                        renewed = .now
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        logger.warning("could not renew a run's lease", metadata: ["run_id": "\(run.publicID)", "error": "\(error)"])
                        guard renewed.duration(to: .now) < lease else { throw CancellationError() }
                    }
                    await report()
                }
            }
            group.addTask {
                for await _ in progress.milestones { await report() }
                return nil
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let result = next { return result }
            }
            throw CancellationError()
        }
    }

    private func leaseEnd() -> Date { Date().addingTimeInterval(RunExecutor.milliseconds(lease) / 1000) }

    /// Milliseconds in a duration, as runs record stage timings.
    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
}
