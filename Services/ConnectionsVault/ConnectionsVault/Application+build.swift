import Foundation
import Hummingbird
import Logging
import Platform

/// `connections-vault`: connection metadata, the secrets engine and checks against customer databases.
public enum ConnectionsVaultService {
    /// The executable's name, used in logs and `/health`.
    public static let name = "connections-vault"
    /// Default `http.port`.
    public static let defaultPort = 8001
    /// The PostgreSQL schema this service owns.
    public static let schema = "connections"

    /// The service's schema migrations (also for tests that prepare the schema without booting the service).
    public static func migrations() throws -> [Migration] {
        try PlatformServices.migrations(in: Bundle.module.url(forResource: "Migrations", withExtension: nil))
    }

    /// `connections-vault rewrap`: moves every data key of the built-in vault to the active master key, while
    /// the service keeps running. Prints how many versions it rewrapped.
    public static func rewrap(settings: ServiceSettings, logger: Logger) async throws {
        let platform = try PlatformServices(settings: settings, logger: logger, schema: schema, resources: .module)
        guard case .builtIn(let vault) = try SecretsEngine.configured(platform: platform, schema: schema, threadPool: .singleton) else {
            throw VaultError.configuration("rewrap is for the built-in vault; HashiCorp Vault rotates its own keys")
        }
        try await withRunningServices([platform.postgres, platform.redis]) {
            try await platform.prepareDatabase()
            let count = try await vault.rewrapAll()
            logger.notice("rewrapped data keys", metadata: ["versions": "\(count)"])
            print("rewrapped \(count) secret versions")
        }
    }

    /// The only wiring point of the service: clients, routes and workers, from settings.
    public static func buildApplication(settings: ServiceSettings, logger: Logger) async throws -> some ApplicationProtocol {
        let platform = try PlatformServices(settings: settings, logger: logger, schema: schema, resources: .module)
        let config = settings.config
        let publisher = StreamPublisher(redis: platform.redis)
        // Checks against customers' databases block a thread each for up to the connect timeout, and requests to
        // an external vault for up to its timeout: threads of their own, not the shared pool's two.
        let checks = ThreadPoolService(threads: config.int(forKey: "connections.test.threads", default: 4))
        let vaultRequests = ThreadPoolService(threads: config.int(forKey: "vault.threads", default: 4))
        let engine = try SecretsEngine.configured(platform: platform, schema: schema, threadPool: vaultRequests.threadPool)
        logger.info("secrets engine", metadata: ["engine": "\(engine.name)"])
        let secrets = AuditedSecretBackend(backend: engine.backend, auditor: StreamSecretAuditor(publisher: publisher))
        let connectTimeout = config.int(forKey: "connections.test.connect_timeout_seconds", default: 5)
        let connections = ConnectionService(
            connections: try PostgresConnectionRepository(postgres: platform.postgres, schema: schema), secrets: secrets,
            tester: ConnectionTester(threadPool: checks.threadPool, connectTimeoutSeconds: connectTimeout),
            inspector: SchemaInspector(threadPool: checks.threadPool, connectTimeoutSeconds: connectTimeout),
            events: publisher, logger: logger)
        let credentialReaders = config.string(forKey: "connections.credentials.allowed_services", default: "pipeline-runner,file-storage")

        let router = try await platform.makeRouter(authenticating: true)
        ConnectionsController(service: connections, serviceName: name).addRoutes(to: router.group("api/v1/connections"))
        ConnectorsController(service: connections, serviceName: name).addRoutes(to: router.group("api/v1/connectors"))
        InternalController(
            connections: connections, engine: engine,
            credentialReaders: Set(credentialReaders.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }),
            audit: publisher, serviceName: name
        ).addRoutes(to: router)
        return platform.makeApplication(router: router, services: [checks, vaultRequests])
    }
}
