import Foundation
import Platform

/// What a due task does when a scheduler claims it.
struct FireDecision: Sendable, Equatable {
    enum Action: Sendable, Equatable {
        /// Start a run.
        case start
        /// Start a run and cancel the unfinished ones (`concurrency_policy: replace`).
        case startReplacing
        /// Record a skipped run, with the reason.
        case skip(String)
    }

    /// The fire time the run is for (with the task, its idempotency key).
    var scheduledFor: Date
    var action: Action
    /// When the task fires next; `nil` if its schedule has no further fire time.
    var nextRunAt: Date?
}

/// The decisions of the engine, as pure functions of the task and the clock.
enum FireRules {
    /// Decides a due task: fires missed while no scheduler ran collapse into one (the latest), dropped instead
    /// under `misfire_policy: skip` when later than `grace`; an unfinished previous run is skipped, joined or
    /// replaced by `concurrency_policy`.
    static func decide(
        dueAt: Date, now: Date, cron: CronExpression, zone: TimeZone, misfire: MisfirePolicy, concurrency: ConcurrencyPolicy,
        unfinishedRuns: Int, grace: Duration
    ) -> FireDecision {
        let latest = max(cron.latestFire(atOrBefore: now, in: zone) ?? dueAt, dueAt)
        let next = cron.nextFire(after: max(now, latest), in: zone)
        if misfire == .skip, now.timeIntervalSince(latest) > grace.secondsValue {
            return FireDecision(scheduledFor: latest, action: .skip("missed: no scheduler ran at the fire time (misfire_policy skip)"), nextRunAt: next)
        }
        guard unfinishedRuns > 0 else { return FireDecision(scheduledFor: latest, action: .start, nextRunAt: next) }
        switch concurrency {
        case .allow: return FireDecision(scheduledFor: latest, action: .start, nextRunAt: next)
        case .replace: return FireDecision(scheduledFor: latest, action: .startReplacing, nextRunAt: next)
        case .forbid:
            return FireDecision(scheduledFor: latest, action: .skip("the previous run is unfinished (concurrency_policy forbid)"), nextRunAt: next)
        }
    }

    /// How long to wait before the next attempt after attempt number `attempt` (from 1) failed: the back-off
    /// doubled for each earlier retry, at most a day; `nil` when `maxRetries` retries are used up.
    static func retryDelay(afterAttempt attempt: Int, maxRetries: Int, backoffSeconds: Int) -> Duration? {
        guard attempt >= 1, attempt <= maxRetries else { return nil }
        let doubled = Double(backoffSeconds) * pow(2, Double(attempt - 1))
        return .seconds(min(doubled, 86_400))
    }
}
