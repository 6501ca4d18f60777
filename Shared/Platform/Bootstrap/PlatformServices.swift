import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import JWTKit
import Logging
import ServiceLifecycle

/// The parts every service is built from: settings, logger, metrics, the PostgreSQL and Redis clients,
/// the standard middleware and routes, and start-up migration of the service's own schema.
///
/// A service's `buildApplication` creates one of these, adds its own routes and workers, and calls
/// ``makeApplication(router:services:)``.
public struct PlatformServices: Sendable {
    /// The shared settings.
    public let settings: ServiceSettings
    /// The service's logger.
    public let logger: Logger
    /// The service's metrics registry.
    public let metrics: PlatformMetrics
    /// The pooled client of the platform database.
    public let postgres: PostgresClient
    /// The pooled Redis client.
    public let redis: RedisClient
    /// The schema this service owns and migrates.
    public let schema: String
    /// Its migrations, in order.
    public let migrations: [Migration]
    /// The OpenAPI document of the service's public routes, served at `/openapi.json`.
    public let openAPI: OpenAPIDocument?

    /// Creates the clients (they connect lazily) and keeps the migrations and the API document.
    public init(settings: ServiceSettings, logger: Logger, schema: String, migrations: [Migration], openAPI: OpenAPIDocument? = nil) {
        let metrics = PlatformMetrics()
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
        self.schema = schema
        self.migrations = migrations
        self.openAPI = openAPI
        self.postgres = PostgresClient(
            configuration: settings.postgres, maxConnections: settings.postgresPoolSize, logger: logger,
            observer: metrics.poolObserver(pool: "postgres"))
        self.redis = RedisClient(configuration: settings.redis, maxConnections: settings.redisPoolSize, logger: logger,
                                 observer: metrics.poolObserver(pool: "redis"))
    }

    /// The same, with the migrations and the API document read from a service's `Migrations` and `OpenAPI`
    /// resource directories (pass its `Bundle.module`).
    public init(settings: ServiceSettings, logger: Logger, schema: String, resources: Bundle) throws {
        self.init(
            settings: settings, logger: logger, schema: schema,
            migrations: try Self.migrations(in: resources.url(forResource: "Migrations", withExtension: nil)),
            openAPI: try OpenAPIDocument.load(directory: resources.url(forResource: "OpenAPI", withExtension: nil)))
    }

    /// The readiness checks of the two shared dependencies.
    public var healthChecks: [HealthCheck] {
        [
            HealthCheck(name: "database") { [postgres] in try await postgres.query("SELECT 1") },
            HealthCheck(name: "redis") { [redis] in try await redis.execute(["PING"]) },
        ]
    }

    /// A router with the standard middleware (metrics, request id, error envelope) and routes
    /// (`/health`, `/health/ready`, `/metrics`). With `authenticating`, every `/api/` request must carry an
    /// access token that verifies with ``accessTokenKeys()`` (the services behind the gateway trust no network),
    /// and every `/internal/` request a service token or an access token (``InternalCallerMiddleware``).
    /// `routes` describes the router's routes for 405 answers (``ErrorEnvelopeMiddleware``), when it is not the
    /// service's own `openAPI` document.
    public func makeRouter(
        authenticating: Bool = false, publicRoutes: @escaping @Sendable ([Substring]) -> Bool = { _ in false },
        routes: OpenAPIDocument? = nil
    ) async throws -> Router<PlatformRequestContext> {
        let router = Router(context: PlatformRequestContext.self)
        router.middlewares.add(HTTPMetricsMiddleware(metrics: metrics))
        router.middlewares.add(RequestIDMiddleware())
        router.middlewares.add(ErrorEnvelopeMiddleware(document: routes ?? openAPI))
        HealthController(version: settings.version, checks: healthChecks, metrics: metrics).addRoutes(to: router)
        if let openAPI {
            let json = ByteBuffer(data: try openAPI.documentingPlatformAnswers().jsonData())
            router.get("openapi.json") { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: json))
            }
        }
        if authenticating {
            let keys = try await accessTokenKeys()
            router.middlewares.add(AccessTokenMiddleware(keys: keys, isPublic: publicRoutes))
            var services: ServiceTokenVerifier?
            if let key = try serviceTokenKey() { services = await ServiceTokenVerifier(key: key, audience: settings.serviceName) }
            router.middlewares.add(InternalCallerMiddleware(services: services, users: keys))
        }
        return router
    }

    /// The key of service tokens (`service.token_key`, or the file `service.token_key_file`); `nil` when the
    /// deployment configures none, and then no service token is accepted.
    public func serviceTokenKey() throws -> ServiceTokenKey? {
        try settings.config.secret(forKey: "service.token_key").map { try ServiceTokenKey(base64: $0) }
    }

    /// The keys access tokens are verified with: the gateway's public key from `auth.jwt.public_key`
    /// (base64 of the raw Ed25519 key) when set, else the gateway's JWKS document at `auth.jwks.url`.
    public func accessTokenKeys() async throws -> AccessTokenKeys {
        if let text = settings.config.string(forKey: "auth.jwt.public_key"), !text.isEmpty {
            guard let raw = Data(base64URLOrBase64: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw AccessTokenSigner.InvalidKey(reason: "auth.jwt.public_key is not base64")
            }
            return AccessTokenKeys(verifier: await AccessTokenVerifier(publicKey: try EdDSA.PublicKey(x: raw.base64URLEncodedString(), curve: .ed25519)))
        }
        return AccessTokenKeys(jwksURL: settings.config.string(
            forKey: "auth.jwks.url", default: "http://127.0.0.1:8000/.well-known/jwks.json"))
    }

    /// Migrates the schema and records this instance; runs before the server accepts requests.
    public func prepareDatabase() async throws {
        let migrator = try Migrator(schema: schema, migrations: migrations, logger: logger)
        try await migrator.migrate(using: postgres)
        try await InstanceRegistry(schema: schema).register(settings: settings, using: postgres)
    }

    /// The application: the pools first, then `services` (workers), then the HTTP server, which starts only
    /// after the schema is migrated. SIGTERM and SIGINT shut it down gracefully, in reverse order.
    public func makeApplication(
        router: Router<PlatformRequestContext>, services: [any Service] = []
    ) -> some ApplicationProtocol {
        makeApplication(responder: router.buildResponder(), services: services)
    }

    /// The application around any responder (a router wrapped in an outer layer); `afterMigration` runs once
    /// the schema is migrated, before the server accepts requests. `server` chooses the protocols spoken
    /// (HTTP/1.1, or HTTP/1.1 that may upgrade to WebSocket).
    public func makeApplication<Responder: HTTPResponder>(
        responder: Responder, server: HTTPServerBuilder = .http1(), services: [any Service] = [],
        afterMigration: @escaping @Sendable () async throws -> Void = {}
    ) -> some ApplicationProtocol where Responder.Context == PlatformRequestContext {
        var app = Application(
            responder: responder,
            server: server,
            configuration: .init(address: .hostname(settings.httpHost, port: settings.httpPort), serverName: settings.serviceName),
            services: [postgres, redis] + services,
            logger: logger
        )
        app.beforeServerStarts {
            try await prepareDatabase()
            try await afterMigration()
        }
        return app
    }

    /// Loads `NNNN_*.sql` migrations from a resource directory (a service's `Bundle.module` `Migrations`).
    public static func migrations(in directory: URL?) throws -> [Migration] {
        guard let directory else { throw MigrationError(reason: "the Migrations resource directory is missing") }
        return try MigrationSource.load(directory: directory)
    }
}

/// Records each running replica in `<schema>.service_instances` (created by each service's first migration).
struct InstanceRegistry {
    let schema: String

    func register(settings: ServiceSettings, using postgres: PostgresClient) async throws {
        let table = try PostgresIdentifier("service_instances", schema: schema)
        try await postgres.query("""
            INSERT INTO \(table) (instance_id, service, version, http_port, started_at, last_seen_at)
            VALUES (\(settings.instanceID), \(settings.serviceName), \(settings.version), \(settings.httpPort), now(), now())
            ON CONFLICT (instance_id) DO UPDATE
            SET version = EXCLUDED.version, http_port = EXCLUDED.http_port, started_at = now(), last_seen_at = now()
            """)
    }
}
