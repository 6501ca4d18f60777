import Foundation
import Logging
import Platform

/// Tells every scheduler replica that what is due may have changed (a task was created, changed, resumed or run
/// by hand), so each engine looks again at once instead of at the end of its sleep.
struct ScheduleChanges: Sendable {
    /// A short stream every replica follows (no consumer group: all of them see each entry).
    static let stream = "scheduler:changes"

    let redis: RedisClient
    let logger: Logger

    /// Announces a change. A lost announcement costs only latency (replicas look again within their sleep), so a
    /// failure is logged, not thrown.
    func announce() async {
        do {
            _ = try await redis.execute(["XADD", Self.stream, "MAXLEN", "~", "1000", "*", "changed", "1"]).checked()
        } catch {
            logger.warning("could not announce a schedule change", metadata: ["error": "\(error)"])
        }
    }

    /// Wakes `engine` on every announcement, whichever replica made it.
    static func follower(waking engine: SchedulerEngine, redis: RedisConfiguration, logger: Logger) -> StreamFollower {
        StreamFollower(stream: stream, redis: redis, logger: logger) { _ in engine.wakeUp() }
    }
}
