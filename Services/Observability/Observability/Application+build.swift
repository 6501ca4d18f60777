import Foundation
import Hummingbird
import Logging
import Platform

/// `observability`: metrics, anomalies, predictions and the audit trail.
public enum ObservabilityService {
    /// The executable's name, used in logs and `/health`.
    public static let name = "observability"
    /// Default `http.port`.
    public static let defaultPort = 8005
    /// The PostgreSQL schema this service owns.
    public static let schema = "observability"

    /// The only wiring point of the service: clients, routes and workers, from settings.
    public static func buildApplication(settings: ServiceSettings, logger: Logger) async throws -> some ApplicationProtocol {
        let platform = try PlatformServices(settings: settings, logger: logger, schema: schema, resources: .module)
        let router = try await platform.makeRouter(authenticating: true)
        return platform.makeApplication(router: router)
    }
}
