import AsyncHTTPClient
import AuthGateway
import ConnectionsVault
import Crypto
import FileStorage
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import Observability
import PipelineRunner
import Platform
import PlatformTesting
import Scheduler
import ServiceLifecycle

/// The gateway and the five services running on loopback ports, with an HTTP client to talk to them.
struct GatewayStack {
    let gateway: String
    let client: HTTPClient
    /// Base URLs of the services the stack started, by name.
    let services: [String: String]
    /// The key the stack's services accept service tokens under.
    let serviceTokenKey: ServiceTokenKey
    /// That key as its settings give it (base64), for services the test starts as processes of their own.
    let serviceTokenKeyText: String

    /// The services behind the gateway, by their `SERVICE_URL_*` suffix.
    static let upstreams: [(env: String, name: String, build: @Sendable (ServiceSettings) async throws -> any ApplicationProtocol)] = [
        ("CONNECTIONS_VAULT", ConnectionsVaultService.name, { try await ConnectionsVaultService.buildApplication(settings: $0, logger: TestEnvironment.logger) }),
        ("SCHEDULER", SchedulerService.name, { try await SchedulerService.buildApplication(settings: $0, logger: TestEnvironment.logger) }),
        ("PIPELINE_RUNNER", PipelineRunnerService.name, { try await PipelineRunnerService.buildApplication(settings: $0, logger: TestEnvironment.logger) }),
        ("FILE_STORAGE", FileStorageService.name, { try await FileStorageService.buildApplication(settings: $0, logger: TestEnvironment.logger) }),
        ("OBSERVABILITY", ObservabilityService.name, { try await ObservabilityService.buildApplication(settings: $0, logger: TestEnvironment.logger) }),
    ]

    /// Starts everything, runs `body`, stops everything. `replace` swaps a service's URL (a closed port, a
    /// test upstream); `extra` runs beside the stack (such a test upstream); `gatewaySettings` adds gateway keys,
    /// `serviceSettings` keys of the services behind it.
    static func run(
        replace: [String: String] = [:], extra: [any Service] = [], gatewaySettings: [String: String] = [:],
        serviceSettings: [String: String] = [:],
        _ body: (GatewayStack) async throws -> Void
    ) async throws {
        let gatewayPort = try TestEnvironment.freePort()
        let jwksURL = "http://127.0.0.1:\(gatewayPort)/.well-known/jwks.json"
        var gatewayEnvironment: [String: String] = [
            "HTTP_PORT": String(gatewayPort), "AUTH_BCRYPT_COST": "4", "RATELIMIT_ANONYMOUS": "100000",
            "RATELIMIT_USER": "40", "RATELIMIT_ADMIN": "40",
            "AUTH_JWT_PRIVATE_KEY": Curve25519.Signing.PrivateKey().rawRepresentation.base64EncodedString(),
        ]
        let serviceKeyText = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString()
        var services: [any Service] = extra
        var ports: [Int] = [gatewayPort]
        var serviceURLs: [String: String] = [:]
        // Every address first: the services call each other too (the scheduler asks connections-vault).
        var started: [(upstream: (env: String, name: String, build: @Sendable (ServiceSettings) async throws -> any ApplicationProtocol), port: Int)] = []
        for upstream in upstreams {
            if let url = replace[upstream.env] {
                gatewayEnvironment["SERVICE_URL_\(upstream.env)"] = url
                continue
            }
            let port = try TestEnvironment.freePort()
            ports.append(port)
            gatewayEnvironment["SERVICE_URL_\(upstream.env)"] = "http://127.0.0.1:\(port)"
            serviceURLs[upstream.name] = "http://127.0.0.1:\(port)"
            started.append((upstream, port))
        }
        let addresses = gatewayEnvironment.filter { $0.key.hasPrefix("SERVICE_URL_") }
        for (upstream, port) in started {
            let settings = try await TestEnvironment.serviceSettings(
                serviceName: upstream.name,
                overrides: addresses.merging(["HTTP_PORT": String(port), "AUTH_JWKS_URL": jwksURL, "SERVICE_TOKEN_KEY": serviceKeyText]) { _, new in new }
                    .merging(serviceSettings) { _, new in new })
            services.append(try await upstream.build(settings))
        }
        let settings = try await TestEnvironment.serviceSettings(
            serviceName: AuthGatewayService.name, overrides: gatewayEnvironment.merging(gatewaySettings) { _, new in new })
        services.append(try await AuthGatewayService.buildApplication(settings: settings, logger: TestEnvironment.logger))

        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(2), read: .seconds(30)))
        configuration.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let stack = GatewayStack(
            gateway: "http://127.0.0.1:\(gatewayPort)", client: client, services: serviceURLs,
            serviceTokenKey: try ServiceTokenKey(base64: serviceKeyText), serviceTokenKeyText: serviceKeyText)
        do {
            try await withServices(services) {
                for port in ports {
                    let up = await waitUntil(timeout: .seconds(20), interval: .milliseconds(50)) {
                        (try? await stack.client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/health"), timeout: TimeAmount.seconds(1)).status) == .ok
                    }
                    guard up else { throw StackFailure("the service on port \(port) did not start") }
                }
                try await body(stack)
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// A service token of `caller` for calls to `audience`, under the stack's key.
    func serviceToken(from caller: String, to audience: String) async throws -> String {
        try await ServiceTokenIssuer(key: serviceTokenKey, service: caller).token(for: audience)
    }

    /// One answer, fully read.
    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        func header(_ name: String) -> String? { headers.first(name: name) }
    }

    /// Sends a request to the gateway (or `base`) and reads the whole answer.
    func send(
        _ method: HTTPMethod, _ path: String, token: String? = nil, json: [String: Any]? = nil,
        headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil, base: String? = nil
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: (base ?? gateway) + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        } else if let body {
            request.body = body
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Data(buffer: bytes))
    }

    /// Registers a user with a unique name and logs in; `role` is set in the database (an admin's job,
    /// done directly so each test owns its users).
    func user(_ role: UserRoleName = .analyst) async throws -> (id: String, username: String, access: String, refresh: String) {
        let username = TestEnvironment.uniqueName(role.rawValue)
        let registered = try await send(.POST, "/api/v1/auth/register", json: [
            "username": username, "email": "\(username)@example.com", "password": "passw0rd-\(role.rawValue)", "full_name": "Test \(role.rawValue)",
        ])
        guard registered.status == 201, let id = registered.json["id"] as? String else {
            throw StackFailure("registration answered \(registered.status)")
        }
        if role != .analyst {
            let postgres = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 1, logger: TestEnvironment.logger)
            try await withServices([postgres]) {
                try await postgres.query("UPDATE auth.users SET role = \(role.rawValue) WHERE username = \(username)")
            }
        }
        let login = try await send(.POST, "/api/v1/auth/login", json: ["username": username, "password": "passw0rd-\(role.rawValue)"])
        guard login.status == 200, let access = login.json["access_token"] as? String, let refresh = login.json["refresh_token"] as? String else {
            throw StackFailure("login answered \(login.status)")
        }
        return (id, username, access, refresh)
    }

    struct StackFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    enum UserRoleName: String, CaseIterable, Sendable {
        case analyst, engineer, architect, admin
    }
}
