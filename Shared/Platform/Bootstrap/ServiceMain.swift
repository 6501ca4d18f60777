import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// The whole `main` of a service executable: read settings, set up logging, build, run until SIGTERM.
public enum ServiceMain {
    /// Runs the service built by `build`; exits non-zero (after logging why) if it cannot start.
    public static func run<App: ApplicationProtocol>(
        serviceName: String, defaultPort: Int,
        build: (ServiceSettings, Logger) async throws -> App
    ) async {
        let (settings, logger) = await bootstrap(serviceName: serviceName, defaultPort: defaultPort, arguments: CommandLine.arguments)
        do {
            let app = try await build(settings, logger)
            try await app.runService()
        } catch {
            logger.critical("service stopped with an error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }

    /// Runs a one-off administrative command of a service (`connections-vault rewrap`) with the service's
    /// settings (the command's own word removed from the arguments); exits 0 on success, 1 on failure.
    public static func runCommand(
        serviceName: String, defaultPort: Int, arguments: [String],
        command: (ServiceSettings, Logger) async throws -> Void
    ) async -> Never {
        let (settings, logger) = await bootstrap(serviceName: serviceName, defaultPort: defaultPort, arguments: arguments)
        do {
            try await command(settings, logger)
            exit(0)
        } catch {
            logger.critical("command failed", metadata: ["error": "\(error)"])
            exit(1)
        }
    }

    private static func bootstrap(serviceName: String, defaultPort: Int, arguments: [String]) async -> (ServiceSettings, Logger) {
        let settings: ServiceSettings
        do {
            settings = ServiceSettings(reader: try await ServiceSettings.makeReader(arguments: arguments), serviceName: serviceName, defaultPort: defaultPort)
        } catch {
            print("\(serviceName): cannot read configuration: \(error)")
            exit(2)
        }
        return (settings, PlatformLogging.bootstrap(settings))
    }
}

/// Runs `services` (pools) in the background while `body` runs, then stops them: for commands that use the
/// platform's clients outside an application.
public func withRunningServices<T: Sendable>(_ services: [any Service], _ body: () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for service in services { group.addTask { try await service.run() } }
        defer { group.cancelAll() }
        return try await body()
    }
}
