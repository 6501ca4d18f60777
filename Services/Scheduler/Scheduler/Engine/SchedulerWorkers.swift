import Foundation
import Logging
import Platform
import SharedModels

/// The streams the scheduler follows, each through the consumer group `scheduler` (one replica handles each entry).
enum SchedulerWorkers {
    /// Run status from pipeline-runner's `platform:run-events`.
    static func runEvents(ledger: RunLedger, settings: ServiceSettings, logger: Logger) -> StreamWorker {
        StreamWorker(
            configuration: .init(stream: PlatformStream.runEvents.rawValue, group: "scheduler", consumer: settings.instanceID),
            redis: settings.redis, logger: logger
        ) { entry in
            guard let event = try? entry.decode(RunEvent.self) else {
                logger.warning("ignoring a run event that does not decode", metadata: ["entry": "\(entry.id)"])
                return
            }
            try await ledger.apply(event)
        }
    }

    /// `connection.deleted` from connections-vault: the connection's tasks are disabled, with the reason.
    static func connectionEvents(repository: any TaskRepository, settings: ServiceSettings, logger: Logger) -> StreamWorker {
        deactivating(repository: repository, settings: settings, logger: logger) { (event: ConnectionEvent) in
            event.kind == .deleted ? .connection(Int64(event.connectionID)) : nil
        }
    }

    /// `pipeline.deleted` from pipeline-runner: the pipeline's tasks are disabled, with the reason.
    static func pipelineEvents(repository: any TaskRepository, settings: ServiceSettings, logger: Logger) -> StreamWorker {
        deactivating(repository: repository, settings: settings, logger: logger) { (event: PipelineEvent) in
            event.kind == .deleted ? .pipeline(event.pipelineID) : nil
        }
    }

    /// Disables the tasks of the owner an event on `Event`'s stream reports deleted (`deleted` names it, or is `nil`).
    private static func deactivating<Event: StreamEvent>(
        repository: any TaskRepository, settings: ServiceSettings, logger: Logger, deleted: @escaping @Sendable (Event) -> TaskOwner?
    ) -> StreamWorker {
        StreamWorker(
            configuration: .init(stream: Event.stream.rawValue, group: "scheduler", consumer: settings.instanceID),
            redis: settings.redis, logger: logger
        ) { entry in
            guard let event = try? entry.decode(Event.self), let owner = deleted(event) else { return }
            let count = try await repository.deactivate(owner, reason: "\(owner) was deleted")
            if count > 0 { logger.notice("deactivated the tasks of a deleted \(owner.kind)", metadata: ["\(owner.kind)_id": "\(owner.id)", "tasks": "\(count)"]) }
        }
    }

    /// New files from file-storage's `platform:file-events`: file triggers whose pattern matches start a run.
    static func fileEvents(triggers: TriggerService, settings: ServiceSettings, logger: Logger) -> StreamWorker {
        StreamWorker(
            configuration: .init(stream: PlatformStream.fileEvents.rawValue, group: "scheduler", consumer: settings.instanceID),
            redis: settings.redis, logger: logger
        ) { entry in
            guard let event = try? entry.decode(FileEvent.self) else { return }
            let fired = try await triggers.fileArrived(event)
            if fired > 0 { logger.info("file triggers fired", metadata: ["path": "\(event.path)", "runs": "\(fired)"]) }
        }
    }
}
