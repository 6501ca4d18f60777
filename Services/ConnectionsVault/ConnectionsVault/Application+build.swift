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

    /// The only wiring point of the service: clients, routes and workers, from settings.
    public static func buildApplication(settings: ServiceSettings, logger: Logger) async throws -> some ApplicationProtocol {
        let platform = try PlatformServices(settings: settings, logger: logger, schema: schema, resources: .module)
        let router = try await platform.makeRouter(authenticating: true)
        return platform.makeApplication(router: router)
    }
}
