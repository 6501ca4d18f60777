import Foundation
import Platform
@testable import Scheduler
import SharedModels
import Testing

@Suite struct FireRulesTests {
    let utc = TimeZone(identifier: "UTC")!
    let everyFiveMinutes = try! CronExpression("*/5 * * * *")

    func at(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

    func decide(due: String, now: String, misfire: MisfirePolicy = .fireOnce, concurrency: ConcurrencyPolicy = .forbid, unfinished: Int = 0) -> FireDecision {
        FireRules.decide(dueAt: at(due), now: at(now), cron: everyFiveMinutes, zone: utc, misfire: misfire, concurrency: concurrency,
                         unfinishedRuns: unfinished, grace: .seconds(60))
    }

    @Test func anOnTimeFireStartsAndMovesToTheNextTime() {
        let decision = decide(due: "2026-01-01T10:05:00Z", now: "2026-01-01T10:05:00.300Z")
        #expect(decision == FireDecision(scheduledFor: at("2026-01-01T10:05:00Z"), action: .start, nextRunAt: at("2026-01-01T10:10:00Z")))
    }

    @Test func manyMissedFiresCollapseIntoTheLatestOne() {
        // Down from 10:05 to 13:02: 35 fire times missed, one run, for 13:00.
        let decision = decide(due: "2026-01-01T10:05:00Z", now: "2026-01-01T13:02:10Z")
        #expect(decision == FireDecision(scheduledFor: at("2026-01-01T13:00:00Z"), action: .start, nextRunAt: at("2026-01-01T13:05:00Z")))
    }

    @Test func skipPolicyDropsLateFiresButNotOnTimeOnes() {
        let late = decide(due: "2026-01-01T10:05:00Z", now: "2026-01-01T13:02:10Z", misfire: .skip)
        #expect(late.scheduledFor == at("2026-01-01T13:00:00Z"))
        #expect(late.nextRunAt == at("2026-01-01T13:05:00Z"))
        guard case .skip(let reason) = late.action else { Issue.record("expected a skip, got \(late.action)"); return }
        #expect(reason.contains("misfire"))
        // Within the grace it is on time.
        #expect(decide(due: "2026-01-01T10:05:00Z", now: "2026-01-01T10:05:40Z", misfire: .skip).action == .start)
    }

    @Test(arguments: [
        (ConcurrencyPolicy.forbid, 0, FireDecision.Action.start),
        (.forbid, 1, .skip("the previous run is unfinished (concurrency_policy forbid)")),
        (.allow, 2, .start),
        (.replace, 1, .startReplacing),
        (.replace, 0, .start),
    ])
    func concurrencyPolicies(policy: ConcurrencyPolicy, unfinished: Int, expected: FireDecision.Action) {
        #expect(decide(due: "2026-01-01T10:05:00Z", now: "2026-01-01T10:05:01Z", concurrency: policy, unfinished: unfinished).action == expected)
    }

    @Test func aRareScheduleFindsItsNextFireYearsAhead() throws {
        let once = try CronExpression("0 0 29 2 *")
        let decision = FireRules.decide(dueAt: at("2028-02-29T00:00:00Z"), now: at("2028-02-29T00:00:01Z"), cron: once, zone: utc,
                                        misfire: .fireOnce, concurrency: .forbid, unfinishedRuns: 0, grace: .seconds(60))
        #expect(decision.nextRunAt == at("2032-02-29T00:00:00Z"))
    }

    @Test func retriesBackOffExponentiallyUpToTheLimit() {
        #expect(FireRules.retryDelay(afterAttempt: 1, maxRetries: 3, backoffSeconds: 10) == .seconds(10))
        #expect(FireRules.retryDelay(afterAttempt: 2, maxRetries: 3, backoffSeconds: 10) == .seconds(20))
        #expect(FireRules.retryDelay(afterAttempt: 3, maxRetries: 3, backoffSeconds: 10) == .seconds(40))
        #expect(FireRules.retryDelay(afterAttempt: 4, maxRetries: 3, backoffSeconds: 10) == nil)
        #expect(FireRules.retryDelay(afterAttempt: 1, maxRetries: 0, backoffSeconds: 10) == nil)
        #expect(FireRules.retryDelay(afterAttempt: 10, maxRetries: 10, backoffSeconds: 3600) == .seconds(86_400))
    }

    @Test func latestFireLooksBackFarEnough() throws {
        let yearly = try CronExpression("@yearly")
        #expect(yearly.latestFire(atOrBefore: at("2026-06-01T00:00:00Z"), in: utc) == at("2026-01-01T00:00:00Z"))
        #expect(yearly.latestFire(atOrBefore: at("2026-01-01T00:00:00Z"), in: utc) == at("2026-01-01T00:00:00Z"))
        #expect(everyFiveMinutes.latestFire(atOrBefore: at("2026-01-01T10:04:59Z"), in: utc) == at("2026-01-01T10:00:00Z"))
    }

    @Test func jobIDsAreTheIdempotencyKey() {
        let first = RunLedger.jobID(taskID: 7, scheduledFor: at("2026-01-01T10:05:00Z"), attempt: 1)
        #expect(first == "task_7:1767261900000000:1")
        #expect(RunLedger.jobID(taskID: 7, scheduledFor: at("2026-01-01T10:05:00Z"), attempt: 2) != first)
        #expect(TaskRun.id(fromPublic: "taskrun_12") == 12)
        #expect(TaskRun.id(fromPublic: "run_12") == nil)
        #expect(TaskRun.id(fromPublic: "taskrun_-1") == nil)
    }
}
