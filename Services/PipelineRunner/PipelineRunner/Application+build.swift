import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Platform
import SharedModels

/// `pipeline-runner`: projects, pipelines, runs and the execution engine.
public enum PipelineRunnerService {
    /// The executable's name, used in logs and `/health`.
    public static let name = "pipeline-runner"
    /// Default `http.port`.
    public static let defaultPort = 8003
    /// The PostgreSQL schema this service owns.
    public static let schema = "pipelines"

    /// The only wiring point of the service: clients, routes and workers, from settings.
    public static func buildApplication(settings: ServiceSettings, logger: Logger) async throws -> some ApplicationProtocol {
        let platform = try PlatformServices(settings: settings, logger: logger, schema: schema, resources: .module)
        let configuration = RunnerConfiguration(reader: settings.config)
        let tables = try PipelineTables(schema: schema)
        let projectRepository = PostgresProjectRepository(postgres: platform.postgres, tables: tables)
        let pipelineRepository = PostgresPipelineRepository(postgres: platform.postgres, tables: tables)
        let runRepository = PostgresRunRepository(postgres: platform.postgres, tables: tables)
        let events = StreamEventSink(publisher: StreamPublisher(redis: platform.redis))
        let announcer = Announcer(events: events, service: name, logger: logger)

        let catalog: any ConnectionCatalog
        let schedules: any PipelineSchedules
        if let key = try platform.serviceTokenKey() {
            let tokens = await ServiceTokenIssuer(key: key, service: name)
            catalog = RemoteConnectionCatalog(caller: ServiceClient(
                service: "connections-vault", baseURL: configuration.connectionsVaultURL, tokens: tokens, httpClient: .shared,
                timeout: configuration.internalTimeout))
            schedules = RemotePipelineSchedules(caller: ServiceClient(
                service: "scheduler", baseURL: configuration.schedulerURL, tokens: tokens, httpClient: .shared,
                timeout: configuration.internalTimeout))
        } else {
            logger.warning("service.token_key is not set: pipelines cannot be checked against connections or scheduled")
            catalog = UnreachableServices()
            schedules = UnreachableServices()
        }

        let projects = ProjectService(projects: projectRepository, announcer: announcer)
        let pipelines = PipelineService(pipelines: pipelineRepository, projects: projectRepository, catalog: catalog, schedules: schedules,
                                        announcer: announcer)
        let runs = RunService(runs: runRepository, pipelines: pipelineRepository, events: events, announcer: announcer, logger: logger)
        let admin = AdminService(deletions: PostgresDeletionRepository(postgres: platform.postgres, tables: tables), announcer: announcer)
        let customerDatabases = ThreadPoolService(threads: 2 * configuration.jobConcurrency)
        let databases = CustomerDatabases(catalog: catalog, threadPool: customerDatabases.threadPool)
        var clickHouseOptions = CurlHTTPClient.Options()
        // A block of 100,000 rows may take ClickHouse a while to parse and write; a statement's answer is small.
        clickHouseOptions.timeout = .seconds(600)
        clickHouseOptions.maxResponseBytes = 1 << 20
        let executor = RunExecutor(runs: runRepository, events: events, work: [
            .pipelineRun: PipelineLoader(runs: runRepository, pipelines: pipelineRepository, databases: databases,
                                         clickHouse: CurlHTTPClient(threadPool: customerDatabases.threadPool, options: clickHouseOptions),
                                         defaultParallelism: configuration.defaultParallelism, logger: logger),
            .tableAnalysis: TableAnalysis(databases: databases),
            .customSQL: CustomSQL(databases: databases),
            .logAnalysis: LogAnalysis(databases: databases),
        ], owner: settings.instanceID, lease: configuration.runLease, logger: logger)

        let router = try await platform.makeRouter(authenticating: true)
        ProjectsController(projects: projects).addRoutes(to: router.group("api/v1/projects"))
        PipelinesController(pipelines: pipelines, runs: runs).addRoutes(to: router.group("api/v1/pipelines"))
        RunsController(runs: runs).addRoutes(to: router.group("api/v1/runs"))
        AdminController(admin: admin).addRoutes(to: router.group("api/v1/admin"))
        InternalController(pipelines: pipelines).addRoutes(to: router)
        return platform.makeApplication(router: router, services: [
            customerDatabases,
            JobIntake.worker(runs: runs, executor: executor, configuration: configuration, settings: settings, logger: logger),
        ])
    }
}
