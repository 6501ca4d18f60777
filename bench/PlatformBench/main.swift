import ArgumentParser
import ConnectionsVault
import Foundation
import Logging
import Hummingbird
import NIOPosix
import Platform
import Scheduler

/// Benchmarks of the platform's building blocks; the scripts in `bench/` drive it and compare with baselines.
@main
struct PlatformBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "platform-bench",
        abstract: "Benchmarks of the platform's building blocks.",
        subcommands: [Copy.self, StandInUpstream.self, Vault.self, SchedulerLag.self, StreamJobs.self]
    )
}

/// Copies a table between two databases through the platform's COPY streams and prints rows and seconds.
struct Copy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "COPY from one database to another through PostgresCopyPipe.")

    @Option(help: "Source as libpq keywords: 'host=... port=... user=... password=... dbname=...'.")
    var source: String

    @Option(help: "Target as libpq keywords.")
    var target: String

    @Option(help: "The COPY ... TO STDOUT statement run on the source.")
    var sourceSql: String

    @Option(help: "The COPY ... FROM STDIN statement run on the target.")
    var targetSql: String

    @Option(help: "Bytes per chunk.")
    var chunkSize: Int = 256 * 1024

    func run() async throws {
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        let sourceConnection = try await PostgresConnection.connect(try Self.configuration(source), threadPool: threadPool)
        let targetConnection = try await PostgresConnection.connect(try Self.configuration(target), threadPool: threadPool)
        let start = ContinuousClock.now
        let rows = try await PostgresCopyPipe.copy(
            from: sourceConnection, sourceSql, to: targetConnection, targetSql, chunkSize: chunkSize)
        let seconds = (ContinuousClock.now - start).secondsValue
        print("rows=\(rows) seconds=\(String(format: "%.4f", seconds))")
        sourceConnection.close()
        targetConnection.close()
        try await threadPool.shutdownGracefully()
    }

    /// Parses `key=value` pairs separated by spaces (values without spaces).
    static func configuration(_ keywords: String) throws -> PostgresConfiguration {
        var values: [String: String] = [:]
        for pair in keywords.split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("expected key=value, got a malformed pair") }
            values[parts[0]] = parts[1]
        }
        guard let user = values["user"], let database = values["dbname"] else {
            throw ValidationError("user and dbname are required")
        }
        return PostgresConfiguration(
            host: values["host"] ?? "127.0.0.1", port: Int(values["port"] ?? "5432") ?? 5432, username: user,
            password: values["password"], database: database, sslMode: values["sslmode"] ?? "disable")
    }
}

/// A stand-in for a service behind the gateway: every GET answers the same 1 KB JSON document, so the gateway
/// benchmark measures the proxy, not a service.
struct StandInUpstream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upstream", abstract: "Serve a fixed 1 KB JSON answer to every GET on 127.0.0.1.")

    @Option(help: "Port to listen on (127.0.0.1).")
    var port: Int

    func run() async throws {
        let items = (0..<12).map { #"{"id":"metric_\#($0)","name":"rows_processed","value":\#($0 * 1000),"unit":"rows"}"# }
        let document = ByteBuffer(string: #"{"items":["# + items.joined(separator: ",") + #"],"total":12}"#)
        let router = Router()
        router.get("**") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: document))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
    }
}

/// A stream worker in a process of its own whose jobs sleep, counting their starts and finishes in Redis: the
/// process the integration tests kill in the middle of a job.
struct StreamJobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream-jobs", abstract: "Consume a stream with jobs that sleep; count starts and finishes in Redis.")

    @Option(help: "Redis host.") var redisHost = "127.0.0.1"
    @Option(help: "Redis port.") var redisPort: Int
    @Option(help: "The stream (consumer group `testers`).") var stream: String
    @Option(help: "This worker's consumer name.") var consumer: String
    @Option(help: "Seconds each job sleeps.") var jobSeconds: Double = 30
    @Option(help: "Visibility timeout in milliseconds.") var visibilityMs: Int = 2000

    func run() async throws {
        let redis = RedisConfiguration(host: redisHost, port: redisPort)
        let logger = Logger(label: "stream-jobs")
        let counters = RedisClient(configuration: redis, logger: logger)
        let worker = StreamWorker(
            configuration: .init(stream: stream, group: "testers", consumer: consumer, blockTime: .milliseconds(200),
                                 visibilityTimeout: .milliseconds(visibilityMs), reclaimInterval: .milliseconds(100)),
            redis: redis, logger: logger
        ) { [stream, jobSeconds] entry in
            _ = try await counters.execute(["INCR", "\(stream):started:\(entry.id)"])
            try await Task.sleep(for: .milliseconds(Int(jobSeconds * 1000)))
            _ = try await counters.execute(["INCR", "\(stream):finished:\(entry.id)"])
        }
        try await withRunningServices([counters, worker]) { try await Task.sleep(for: .seconds(3600)) }
    }
}

/// The built-in vault against plain table reads and writes of the same 1 KB values, and connection tests with
/// and without reading the credentials from the vault first.
struct Vault: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sealed vs plain 1 KB secret writes and reads; connection test latency.")

    @Option(help: "Database as libpq keywords: 'host=... port=... user=... password=... dbname=...'.")
    var database: String

    @Option(help: "Operations of each kind.")
    var operations: Int = 5000

    @Option(help: "Concurrent callers.")
    var concurrency: Int = 8

    func run() async throws {
        let report = try await VaultBenchmark.run(
            postgres: try Copy.configuration(database), operations: operations, concurrency: concurrency,
            logger: Logger(label: "platform-bench"))
        print(String(format: "sealed_writes=%.0f plain_writes=%.0f sealed_reads=%.0f plain_reads=%.0f", report.sealedWrites,
                     report.plainWrites, report.sealedReads, report.plainReads))
        print(String(format: "test_vault_p50=%.2f test_vault_p99=%.2f test_memory_p50=%.2f test_memory_p99=%.2f",
                     report.testFromVault.p50, report.testFromVault.p99, report.testInMemory.p50, report.testInMemory.p99))
    }
}

/// Fire lag of scheduler replicas over many tasks due at one instant, against a one-task-per-transaction baseline.
struct SchedulerLag: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scheduler", abstract: "Fire lag and duplicates of scheduler replicas.")

    @Option(help: "Database as libpq keywords: 'host=... port=... user=... password=... dbname=...'.")
    var database: String

    @Option(help: "Redis as host:port.")
    var redis: String

    @Option(help: "Tasks due at the same instant.")
    var tasks: Int = 10_000

    @Option(help: "Scheduler replicas.")
    var replicas: Int = 2

    @Option(help: "Tasks claimed per transaction.")
    var batchSize: Int = 500

    func run() async throws {
        let parts = redis.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--redis must be host:port") }
        let report = try await SchedulerBenchmark.run(
            postgres: try Copy.configuration(database), redis: RedisConfiguration(host: String(parts[0]), port: port),
            tasks: tasks, replicas: replicas, batchSize: batchSize, logger: Logger(label: "platform-bench"))
        for (name, result) in [("engine", report.engine), ("baseline", report.baseline)] {
            print(String(format: "%@_p50=%.3f %@_p99=%.3f %@_min=%.3f %@_max=%.3f %@_duplicates=%d %@_missing=%d", name, result.p50, name,
                         result.p99, name, result.min, name, result.max, name, result.duplicates, name, result.missing))
        }
    }
}
