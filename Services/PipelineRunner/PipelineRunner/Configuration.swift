import Configuration
import Foundation
import NIOCore
import Platform

/// pipeline-runner's own settings (beyond ``ServiceSettings``), read from the same configuration.
struct RunnerConfiguration: Sendable {
    /// connections-vault's base URL (`service.url.connections_vault`).
    var connectionsVaultURL: String
    /// The scheduler's base URL (`service.url.scheduler`).
    var schedulerURL: String
    /// Longest wait for another service's answer (`pipelines.internal_timeout_seconds`, 15): deploy checks
    /// inspect customers' databases.
    var internalTimeout: TimeAmount
    /// Jobs taken in at once from `platform:jobs` (`jobs.concurrency`, 8).
    var jobConcurrency: Int
    /// Idle time after which a job of a replica that died is claimed by another (`jobs.visibility_timeout_seconds`, 60).
    var jobVisibilityTimeout: Duration

    /// How long a run's lease lasts unless renewed (its runner renews it every second): half the visibility timeout,
    /// so a job that comes back because its runner died finds the lease expired and the run free to take over.
    /// A longer lease would make the redelivered job meet a live lease, be dropped, and leave the run unowned.
    var runLease: Duration { jobVisibilityTimeout / 2 }

    /// Connections a PostgreSQL target copies with when its pipeline does not say (`pipelines.default_parallelism`, 2:
    /// on the 2-core machine measured, two cut the copy by about a fifth and four by no more; bench/README.md).
    var defaultParallelism: Int

    /// Reads the keys above, with their defaults.
    init(reader: ConfigReader) {
        connectionsVaultURL = reader.string(forKey: "service.url.connections_vault", default: "http://127.0.0.1:8001")
        schedulerURL = reader.string(forKey: "service.url.scheduler", default: "http://127.0.0.1:8002")
        internalTimeout = .seconds(Int64(max(1, reader.int(forKey: "pipelines.internal_timeout_seconds", default: 15))))
        jobConcurrency = max(1, reader.int(forKey: "jobs.concurrency", default: 8))
        jobVisibilityTimeout = .seconds(max(5, reader.int(forKey: "jobs.visibility_timeout_seconds", default: 60)))
        defaultParallelism = min(max(1, reader.int(forKey: "pipelines.default_parallelism", default: 2)), RangeSplitter.maximumParts)
    }
}
