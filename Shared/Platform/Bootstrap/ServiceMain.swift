import Foundation
import Hummingbird
import Logging

/// The whole `main` of a service executable: read settings, set up logging, build, run until SIGTERM.
public enum ServiceMain {
    /// Runs the service built by `build`; exits non-zero (after logging why) if it cannot start.
    public static func run<App: ApplicationProtocol>(
        serviceName: String, defaultPort: Int,
        build: (ServiceSettings, Logger) async throws -> App
    ) async {
        let settings: ServiceSettings
        do {
            settings = ServiceSettings(reader: try await ServiceSettings.makeReader(), serviceName: serviceName, defaultPort: defaultPort)
        } catch {
            print("\(serviceName): cannot read configuration: \(error)")
            exit(2)
        }
        let logger = PlatformLogging.bootstrap(settings)
        do {
            let app = try await build(settings, logger)
            try await app.runService()
        } catch {
            logger.critical("service stopped with an error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
