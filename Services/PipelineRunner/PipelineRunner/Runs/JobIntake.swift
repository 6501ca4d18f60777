import Foundation
import Logging
import Platform
import SharedModels

/// Takes jobs from `platform:jobs` in the consumer group `pipeline-runner` (one replica gets each), records their
/// runs (a job delivered twice is recorded once) and executes pipeline runs; the run's lease, not the delivery,
/// decides whether a run still needs a runner.
enum JobIntake {
    /// The stream worker, with `jobs.concurrency` jobs at a time and `jobs.visibility_timeout_seconds`.
    static func worker(runs: RunService, executor: RunExecutor, configuration: RunnerConfiguration, settings: ServiceSettings,
                       logger: Logger) -> StreamWorker {
        StreamWorker(
            configuration: .init(stream: PlatformStream.jobs.rawValue, group: "pipeline-runner", consumer: settings.instanceID,
                                 concurrency: configuration.jobConcurrency, visibilityTimeout: configuration.jobVisibilityTimeout),
            redis: settings.redis, logger: logger
        ) { entry in
            guard let job = try? entry.decode(JobRequest.self) else {
                logger.warning("ignoring a job that does not decode", metadata: ["entry": "\(entry.id)"])
                return
            }
            if let run = try await runs.intake(job) { try await executor.execute(run) }
        }
    }
}
