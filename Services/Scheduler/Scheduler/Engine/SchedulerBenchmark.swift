import Foundation
import Logging
import Platform
import ServiceLifecycle
import SharedModels

/// `platform-bench scheduler`: many tasks due at the same instant, fired by scheduler replicas running their real
/// engine loops, against a baseline in the same run that claims and publishes one task per transaction.
public enum SchedulerBenchmark {
    /// Fire lag (publish time, from the stream entry id, minus the fire time) and duplicates.
    public struct Result: Sendable {
        public var p50: Double
        public var p99: Double
        public var min: Double
        public var max: Double
        /// Stream entries beyond one per fire.
        public var duplicates: Int
        /// Fires that never got a job before the deadline.
        public var missing: Int
    }

    public struct Report: Sendable {
        public var engine: Result
        public var baseline: Result
    }

    /// Runs both: `replicas` engines over `tasks` tasks, then the one-at-a-time baseline over as many.
    public static func run(
        postgres configuration: PostgresConfiguration, redis: RedisConfiguration, tasks: Int, replicas: Int, batchSize: Int = 500, logger: Logger
    ) async throws -> Report {
        let engine = try await measure(postgres: configuration, redis: redis, tasks: tasks, replicas: replicas, logger: logger) { ledgers in
            let engines = ledgers.map { SchedulerEngine(ledger: $0, settings: .init(batchSize: batchSize), logger: logger) }
            for engine in engines { engine.databaseReady() }
            return engines
        }
        let baseline = try await measure(postgres: configuration, redis: redis, tasks: tasks, replicas: 1, logger: logger) { ledgers in
            ledgers.map { OneAtATime(ledger: $0) }
        }
        return Report(engine: engine, baseline: baseline)
    }

    private static func measure(
        postgres configuration: PostgresConfiguration, redis: RedisConfiguration, tasks count: Int, replicas: Int, logger: Logger,
        schedulers: ([RunLedger]) -> [any Service]
    ) async throws -> Result {
        let schema = "sched_bench_\(UInt32.random(in: .min ... .max))"
        let pools = (0...replicas).map { _ in PostgresClient(configuration: configuration, maxConnections: 4, logger: logger) }
        let redisClient = RedisClient(configuration: redis, logger: logger)
        return try await withRunningServices(pools + [redisClient]) {
            try await Migrator(schema: schema, migrations: SchedulerService.migrations(), logger: logger).migrate(using: pools[0])
            let tasksTable = try PostgresIdentifier("tasks", schema: schema)
            let runsTable = try PostgresIdentifier("task_runs", schema: schema)
            // Task ids of this run only, so its jobs are told apart in the shared stream.
            let firstID = Int64.random(in: 1_000_000_000...9_000_000_000)
            try await pools[0].query(PostgresQuery(unsafeSQL: "ALTER SEQUENCE \(try PostgresIdentifier("tasks_id_seq", schema: schema).quoted) RESTART WITH \(firstID)"))
            // All due at one instant a few seconds ahead, when every replica is asleep waiting for it.
            let fireAt = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 4).rounded(.down))
            try await pools[0].query("""
                INSERT INTO \(tasksTable) (name, task_type, cron_schedule, pipeline_id, next_run_at)
                SELECT 'bench ' || g, 'pipeline_run', '* * * * *', 'pipeline_1', \(fireAt) FROM generate_series(1, \(count)) g
                """)
            let publisher = StreamPublisher(redis: redisClient)
            let ledgers = try pools.dropFirst().map { try RunLedger(postgres: $0, schema: schema, publisher: publisher, logger: logger) }
            let first = "\(Int64(fireAt.timeIntervalSince1970 * 1000) - 5000)-0"
            try await withRunningServices(schedulers(ledgers)) {
                let deadline = ContinuousClock.now + .seconds(120)
                while ContinuousClock.now < deadline {
                    let published = try await pools[0].query("SELECT count(*) AS n FROM \(runsTable) WHERE published_at IS NOT NULL").first!
                        .decode("n", as: Int.self)
                    if published >= count { break }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            // Lag per job from the stream entry ids (the time Redis appended them).
            let reply = try await redisClient.execute(["XRANGE", PlatformStream.jobs.rawValue, first, "+"])
            var lags: [Double] = []
            var jobIDs = Set<String>()
            for entry in (reply.array ?? []).compactMap(StreamCommands.entry) {
                guard let job = try? entry.decode(JobRequest.self), let task = job.taskID, Int64(task) >= firstID, Int64(task) < firstID + Int64(count),
                      let millis = entry.id.split(separator: "-").first.flatMap({ Double($0) }) else { continue }
                jobIDs.insert(job.jobID)
                lags.append(millis / 1000 - fireAt.timeIntervalSince1970)
            }
            try await pools[0].query("DROP SCHEMA \(try PostgresIdentifier(schema)) CASCADE")
            return Result(p50: lags.percentile(0.5), p99: lags.percentile(0.99), min: lags.min() ?? 0, max: lags.max() ?? 0,
                          duplicates: lags.count - jobIDs.count, missing: count - jobIDs.count)
        }
    }

    /// The obvious scheduler: poll, take one due task, record and publish its run, commit, repeat.
    private struct OneAtATime: Service {
        let ledger: RunLedger

        func run() async throws {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let fired = try await ledger.fireDue(now: Date(), limit: 1, grace: .seconds(60))
                if fired == 0 { try? await Task.sleep(for: .milliseconds(100)) }
            }
        }
    }
}
