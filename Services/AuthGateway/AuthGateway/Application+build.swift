import AsyncHTTPClient
import Foundation
import Hummingbird
import JWTKit
import Logging
import NIOCore
import NIOPosix
import Platform
import SharedModels
import HummingbirdWebSocket

/// `auth-gateway`: users, sessions, tokens and rate limits; the only public entry, proxying to the other services.
public enum AuthGatewayService {
    /// The executable's name, used in logs and `/health`.
    public static let name = "auth-gateway"
    /// Default `http.port`.
    public static let defaultPort = 8000
    /// The PostgreSQL schema this service owns.
    public static let schema = "auth"

    /// The only wiring point of the service: clients, routes and workers, from settings.
    public static func buildApplication(settings: ServiceSettings, logger: Logger) async throws -> some ApplicationProtocol {
        let platform = PlatformServices(
            settings: settings, logger: logger, schema: schema,
            migrations: try PlatformServices.migrations(in: Bundle.module.url(forResource: "Migrations", withExtension: nil)))
        let configuration = try GatewayConfiguration(reader: settings.config)

        let signer = await AccessTokenSigner(privateKey: try signingKey(configuration, logger: logger))
        let verifier = await AccessTokenVerifier(publicKey: signer.publicKey)
        let state = RedisAccessStateStore(redis: platform.redis)
        let tokens = TokenService(
            signer: signer, refreshTokens: try PostgresRefreshTokenStore(postgres: platform.postgres, schema: schema), state: state,
            accessLifetime: configuration.accessTokenLifetime, refreshLifetime: configuration.refreshTokenLifetime)
        let accounts = AccountService(
            users: try PostgresUserRepository(postgres: platform.postgres, schema: schema),
            passwords: PasswordHasher(cost: configuration.bcryptCost, threadPool: .singleton),
            tokens: tokens, lockoutThreshold: configuration.lockoutThreshold, lockoutDuration: configuration.lockoutDuration)

        let httpClient = makeHTTPClient(configuration)
        let serviceChecks = Upstream.allCases.compactMap { upstream in
            configuration.upstreams[upstream].map { GatewayRoutes.serviceCheck(upstream, base: $0, httpClient: httpClient) }
        }

        let ownDocument = try OpenAPIDocument.load(directory: Bundle.module.url(forResource: "OpenAPI", withExtension: nil))
            .documentingPlatformAnswers()
        let router = try await platform.makeRouter(routes: ownDocument)
        let policy = AccessPolicy.standard
        router.middlewares.add(GatewayAccessMiddleware(
            policy: policy, rateLimits: configuration.rateLimits, verifier: verifier, state: state,
            trustForwardedFor: configuration.trustForwardedFor))
        AuthController(accounts: accounts).addRoutes(to: router.group("api/v1/auth"))
        UsersController(accounts: accounts).addRoutes(to: router.group("api/v1/users"))
        let catalog = OpenAPICatalog(
            own: ownDocument, upstreams: configuration.upstreams, httpClient: httpClient, policy: policy, logger: logger)
        APIDocsController(catalog: catalog).addRoutes(to: router)
        GatewayRoutes(
            signer: signer, proxy: GatewayProxy(httpClient: httpClient, upstreams: configuration.upstreams, maxBodySize: configuration.maxUploadSize),
            health: HealthController(version: settings.version, checks: platform.healthChecks + serviceChecks, metrics: platform.metrics)
        ).addRoutes(to: router)

        let responder = GatewayResponder(
            router: router.buildResponder(), cors: CORSPolicy(origins: configuration.corsOrigins),
            declaredMethods: { await catalog.document().declaredMethods(forPath: $0) })
        // Live views of pipelines: every replica follows the run events and serves its own sockets.
        let runEvents = RunEventHub()
        let sockets = PipelineEventSocket(hub: runEvents, answer: { try await responder.respond(to: $0, context: $1) }, verifier: verifier)
        let runEventFollower = StreamFollower(stream: PlatformStream.runEvents.rawValue, redis: settings.redis, logger: logger) {
            runEvents.publish($0)
        }
        return platform.makeApplication(
            responder: responder,
            server: .http1WebSocketUpgrade(configuration: .init(ws: .init(maxFrameSize: 1 << 16))) { head, channel, logger in
                await sockets.shouldUpgrade(head, channel: channel, logger: logger)
            },
            services: [HTTPClientService(client: httpClient), runEventFollower],
            afterMigration: { try await accounts.bootstrapAdmin(configuration.bootstrapAdmin, logger: logger) })
    }

    /// The configured signing key, or a new one for this process (tokens then die with it, and replicas
    /// cannot verify each other's tokens: fine for a try-out, wrong for a deployment).
    private static func signingKey(_ configuration: GatewayConfiguration, logger: Logger) throws -> EdDSA.PrivateKey {
        if let text = configuration.signingKey { return try AccessTokenSigner.privateKey(from: text) }
        logger.warning("no auth.jwt.private_key configured: using a key generated for this process only")
        return try EdDSA.PrivateKey()
    }

    /// The client that carries proxied requests: many connections per service (the default of 8 caps the
    /// gateway's concurrency), no redirect following (the client must see them), a read timeout for 504.
    private static func makeHTTPClient(_ configuration: GatewayConfiguration) -> HTTPClient {
        var clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .init(configuration.upstreamConnectTimeout), read: .init(configuration.upstreamReadTimeout)),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 128),
            decompression: .disabled)
        clientConfiguration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: clientConfiguration)
    }
}
