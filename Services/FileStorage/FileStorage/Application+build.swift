import Foundation
import Hummingbird
import Logging
import Platform

/// `file-storage`: stored files, their metadata, storage mounts, watches and imports.
public enum FileStorageService {
    /// The executable's name, used in logs and `/health`.
    public static let name = "file-storage"
    /// Default `http.port`.
    public static let defaultPort = 8004
    /// The PostgreSQL schema this service owns.
    public static let schema = "files"

    /// The only wiring point of the service: clients, routes and workers, from settings.
    public static func buildApplication(settings: ServiceSettings, logger: Logger) async throws -> some ApplicationProtocol {
        let platform = try PlatformServices(settings: settings, logger: logger, schema: schema, resources: .module)
        let router = try await platform.makeRouter(authenticating: true)
        return platform.makeApplication(router: router)
    }
}
