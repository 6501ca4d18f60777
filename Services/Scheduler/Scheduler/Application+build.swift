import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Platform

/// `scheduler`: scheduled tasks, their runs and triggers.
public enum SchedulerService {
    /// The executable's name, used in logs and `/health`.
    public static let name = "scheduler"
    /// Default `http.port`.
    public static let defaultPort = 8002
    /// The PostgreSQL schema this service owns.
    public static let schema = "scheduler"

    /// The service's schema migrations (also for tests that prepare a schema without booting the service).
    public static func migrations() throws -> [Migration] {
        try PlatformServices.migrations(in: Bundle.module.url(forResource: "Migrations", withExtension: nil))
    }

    /// The only wiring point of the service: clients, routes and workers, from settings.
    public static func buildApplication(settings: ServiceSettings, logger: Logger) async throws -> some ApplicationProtocol {
        let platform = try PlatformServices(settings: settings, logger: logger, schema: schema, resources: .module)
        let config = settings.config
        let publisher = StreamPublisher(redis: platform.redis)
        let ledger = try RunLedger(postgres: platform.postgres, schema: schema, publisher: publisher, logger: logger)
        var engineSettings = SchedulerEngine.Settings()
        engineSettings.batchSize = max(1, config.int(forKey: "scheduler.batch_size", default: 500))
        engineSettings.misfireGrace = .seconds(max(1, config.int(forKey: "scheduler.misfire_grace_seconds", default: 60)))
        engineSettings.maxSleep = .seconds(max(1, config.int(forKey: "scheduler.max_sleep_seconds", default: 15)))
        let engine = SchedulerEngine(ledger: ledger, settings: engineSettings, logger: logger)
        let repository = try PostgresTaskRepository(postgres: platform.postgres, schema: schema)

        let connections: any ConnectionDirectory
        let pipelines: any PipelineDirectory
        if let key = try platform.serviceTokenKey() {
            let tokens = await ServiceTokenIssuer(key: key, service: name)
            connections = RemoteConnectionDirectory(connectionsVault: ServiceClient(
                service: "connections-vault", baseURL: config.string(forKey: "service.url.connections_vault", default: "http://127.0.0.1:8001"),
                tokens: tokens, httpClient: .shared))
            pipelines = RemotePipelineDirectory(pipelineRunner: ServiceClient(
                service: "pipeline-runner", baseURL: config.string(forKey: "service.url.pipeline_runner", default: "http://127.0.0.1:8003"),
                tokens: tokens, httpClient: .shared))
        } else {
            logger.warning("service.token_key is not set: tasks that name a connection or a pipeline cannot be checked and are refused")
            connections = UnreachableConnectionDirectory()
            pipelines = UnreachablePipelineDirectory()
        }
        let changes = ScheduleChanges(redis: platform.redis, logger: logger)
        let tasks = TaskService(repository: repository, connections: connections, pipelines: pipelines, announceChange: {
            engine.wakeUp()
            await changes.announce()
        })

        let triggers = TriggerService(tasks: tasks)

        let router = try await platform.makeRouter(authenticating: true, publicRoutes: TriggersController.isWebhook)
        TasksController(service: tasks).addRoutes(to: router.group("api/v1/scheduler/tasks"))
        TriggersController(triggers: triggers).addRoutes(to: router.group("api/v1/mvp/triggers"))
        PipelineSchedulesController(schedules: PipelineScheduleService(tasks: tasks)).addRoutes(to: router)
        return platform.makeApplication(responder: router.buildResponder(), services: [
            engine,
            ScheduleChanges.follower(waking: engine, redis: settings.redis, logger: logger),
            SchedulerWorkers.runEvents(ledger: ledger, settings: settings, logger: logger),
            SchedulerWorkers.connectionEvents(repository: repository, settings: settings, logger: logger),
            SchedulerWorkers.pipelineEvents(repository: repository, settings: settings, logger: logger),
            SchedulerWorkers.fileEvents(triggers: triggers, settings: settings, logger: logger),
        ], afterMigration: { engine.databaseReady() })
    }
}
