import Foundation

/// The rules of a run's life as pure functions: who may claim, renew or finish it, and what a cancel or an ending
/// makes of it. `queued → running → success | failed | cancelled`; a queued run can also be cancelled or fail
/// before it starts. The PostgreSQL repository states the same rules in its `WHERE` clauses; the in-memory one
/// calls these, and the unit tests check them directly.
enum RunLifecycle {
    /// A runner's hold on a run: who runs it, and until when unless renewed.
    struct Lease: Sendable, Equatable {
        var owner: String
        var until: Date
    }

    /// A runner may take a run that is queued, or running under a lease that has expired (its runner died), unless
    /// a cancel was asked for.
    static func mayClaim(_ run: Run, lease: Lease?, now: Date) -> Bool {
        guard run.cancelRequestedAt == nil else { return false }
        return run.status == .queued || (run.status == .running && (lease.map { $0.until < now } ?? true))
    }

    /// The lease's owner keeps a running run until a cancel is asked for (then it stops) or another runner took it.
    static func mayRenew(_ run: Run, lease: Lease?, owner: String) -> Bool {
        lease?.owner == owner && run.status == .running && run.cancelRequestedAt == nil
    }

    /// Only the lease's owner ends a running run (a runner that lost its lease learns so here).
    static func mayFinish(_ run: Run, lease: Lease?, owner: String) -> Bool {
        lease?.owner == owner && run.status == .running
    }

    /// `run` as it is after a cancel request at `at`: a queued run ends `cancelled` at once; a running one is marked
    /// for its runner to stop; an ended run, or one already asked, is unchanged.
    static func cancelled(_ run: Run, at: Date) -> Run {
        guard !run.status.isFinished, run.cancelRequestedAt == nil else { return run }
        var changed = run
        changed.cancelRequestedAt = at
        if run.status == .queued {
            changed.status = .cancelled
            changed.finishedAt = at
        }
        return changed
    }

    /// `run` once its runner reports `outcome` at `at`.
    static func finished(_ run: Run, with outcome: RunOutcome, at: Date) -> Run {
        var ended = run
        ended.status = outcome.status
        ended.finishedAt = at
        ended.rowsProcessed = outcome.rowsProcessed
        ended.bytesProcessed = outcome.bytesProcessed
        ended.metrics = outcome.metrics
        ended.errorCode = outcome.errorCode
        ended.error = outcome.error
        ended.result = outcome.result
        return ended
    }
}
