import AuthGateway
import ConnectionsVault
import FileStorage
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Observability
import PipelineRunner
import Platform
import PlatformTesting
import Scheduler
import SharedModels
import Testing

extension Integration {
    @Suite struct ServiceBootTests {
        typealias Build = @Sendable (ServiceSettings, Logger) async throws -> any ApplicationProtocol

        static let services: [(name: String, schema: String, build: Build)] = [
            (AuthGatewayService.name, AuthGatewayService.schema, { try await AuthGatewayService.buildApplication(settings: $0, logger: $1) }),
            (ConnectionsVaultService.name, ConnectionsVaultService.schema, { try await ConnectionsVaultService.buildApplication(settings: $0, logger: $1) }),
            (SchedulerService.name, SchedulerService.schema, { try await SchedulerService.buildApplication(settings: $0, logger: $1) }),
            (PipelineRunnerService.name, PipelineRunnerService.schema, { try await PipelineRunnerService.buildApplication(settings: $0, logger: $1) }),
            (FileStorageService.name, FileStorageService.schema, { try await FileStorageService.buildApplication(settings: $0, logger: $1) }),
            (ObservabilityService.name, ObservabilityService.schema, { try await ObservabilityService.buildApplication(settings: $0, logger: $1) }),
        ]

        @Test(arguments: services.map(\.name))
        func bootsMigratesAndAnswersReadinessAndMetrics(service: String) async throws {
            let entry = try #require(Self.services.first { $0.name == service })
            let settings = try await TestEnvironment.serviceSettings(serviceName: service)
            let app = try await entry.build(settings, TestEnvironment.logger)
            try await app.test(.live) { client in
                try await client.execute(uri: "/health/ready", method: .get) { response in
                    #expect(response.status == .ok)
                    let readiness = try JSONDecoder.platform.decode(ReadinessStatus.self, from: Data(buffer: response.body))
                    #expect(readiness.components["database"]?.status == "healthy")
                    #expect(readiness.components["redis"]?.status == "healthy")
                }
                try await client.execute(uri: "/metrics", method: .get) { response in
                    #expect(response.status == .ok)
                    let text = String(buffer: response.body)
                    #expect(text.contains(#"db_pool_connections{pool="postgres",state="idle"}"#))
                    #expect(text.contains(#"http_requests_total{route="/health/ready",method="GET",status="200"}"#))
                }
                try await client.execute(uri: "/no/such/route", method: .get) { response in
                    #expect(response.status == .notFound)
                    let body = try JSONDecoder.platform.decode(ErrorEnvelope.self, from: Data(buffer: response.body))
                    #expect(body.error.code == .resourceNotFound)
                }
            }
            // The schema was migrated and the instance recorded.
            let client = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 1, logger: TestEnvironment.logger)
            try await withServices([client]) {
                let schema = try PostgresIdentifier(entry.schema)
                let versions = try await client.query("SELECT version FROM \(schema).schema_migrations")
                #expect(try versions.map { try $0.decode("version", as: Int.self) }.contains(1))
                let instances = try await client.query(
                    "SELECT count(*) AS n FROM \(schema).service_instances WHERE instance_id = \(settings.instanceID)")
                #expect(try instances.first!.decode("n", as: Int.self) == 1)
            }
        }
    }
}
