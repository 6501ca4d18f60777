import Configuration
import Foundation
import Logging
import SystemPackage

/// The settings every service shares, read through swift-configuration.
///
/// Keys are dotted (`postgres.host`); the environment spells them `POSTGRES_HOST`, the command line
/// `--postgres-host`. Sources in order of precedence: command line, environment, `.env` file, defaults.
public struct ServiceSettings: Sendable {
    /// The product name (`auth-gateway`, ...).
    public var serviceName: String
    /// The platform version reported by `/health`.
    public var version: String
    /// A name unique to this replica (`<service>-<host>-<pid>` unless configured).
    public var instanceID: String
    /// Interface to listen on (`http.host`).
    public var httpHost: String
    /// Port to listen on (`http.port`).
    public var httpPort: Int
    /// The platform database (`postgres.*`).
    public var postgres: PostgresConfiguration
    /// Connections in the service's pool (`postgres.pool.size`).
    public var postgresPoolSize: Int
    /// Redis (`redis.*`).
    public var redis: RedisConfiguration
    /// Connections (and threads) in the service's Redis pool (`redis.pool.size`).
    public var redisPoolSize: Int
    /// Minimum level logged (`log.level`).
    public var logLevel: Logger.Level
    /// `json` (default) or `text` (`log.format`).
    public var logFormat: String
    /// The reader the settings came from, for a service's own keys.
    public let config: ConfigReader

    /// Reads the shared keys; `defaultPort` is the service's own default `http.port`.
    public init(reader: ConfigReader, serviceName: String, defaultPort: Int) {
        self.serviceName = serviceName
        self.config = reader
        self.version = reader.string(forKey: "platform.version", default: PlatformVersion.current)
        let host = ProcessInfo.processInfo.hostName
        let pid = ProcessInfo.processInfo.processIdentifier
        self.instanceID = reader.string(forKey: "service.instance", default: "\(serviceName)-\(host)-\(pid)")
        self.httpHost = reader.string(forKey: "http.host", default: "127.0.0.1")
        self.httpPort = reader.int(forKey: "http.port", default: defaultPort)
        self.postgres = PostgresConfiguration(
            host: reader.string(forKey: "postgres.host", default: "127.0.0.1"),
            port: reader.int(forKey: "postgres.port", default: 5432),
            username: reader.string(forKey: "postgres.user", default: "platform"),
            password: reader.string(forKey: "postgres.password", isSecret: true),
            database: reader.string(forKey: "postgres.database", default: "platform"),
            sslMode: reader.string(forKey: "postgres.sslmode", default: "prefer"),
            connectTimeoutSeconds: reader.int(forKey: "postgres.connect.timeout", default: 5),
            applicationName: serviceName,
            liveness: .init(
                idleSeconds: reader.int(forKey: "postgres.keepalives.idle_seconds", default: 30),
                intervalSeconds: reader.int(forKey: "postgres.keepalives.interval_seconds", default: 10),
                count: reader.int(forKey: "postgres.keepalives.count", default: 3),
                userTimeoutMilliseconds: reader.int(forKey: "postgres.tcp_user_timeout_ms", default: 60_000))
        )
        self.postgresPoolSize = max(1, reader.int(forKey: "postgres.pool.size", default: 8))
        self.redis = RedisConfiguration(
            host: reader.string(forKey: "redis.host", default: "127.0.0.1"),
            port: reader.int(forKey: "redis.port", default: 6379),
            password: reader.string(forKey: "redis.password", isSecret: true),
            database: reader.int(forKey: "redis.database", default: 0)
        )
        self.redisPoolSize = max(1, reader.int(forKey: "redis.pool.size", default: 16))
        self.logLevel = Logger.Level(rawValue: reader.string(forKey: "log.level", default: "info").lowercased()) ?? .info
        self.logFormat = reader.string(forKey: "log.format", default: "json")
    }

    /// The standard reader: command line, then environment, then `./.env` (if present).
    public static func makeReader(
        arguments: [String] = CommandLine.arguments,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        environmentFile: String? = ".env"
    ) async throws -> ConfigReader {
        var providers: [any ConfigProvider] = [
            CommandLineArgumentsProvider(arguments: arguments, secretsSpecifier: .dynamic(Self.isSecretKey)),
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: .dynamic(Self.isSecretKey)),
        ]
        if let environmentFile {
            providers.append(try await EnvironmentVariablesProvider(
                environmentFilePath: FilePath(environmentFile), allowMissing: true,
                secretsSpecifier: .dynamic(Self.isSecretKey)))
        }
        return ConfigReader(providers: providers)
    }

    /// Keys whose values are redacted wherever swift-configuration reports them.
    @Sendable static func isSecretKey(_ key: String, _ value: String) -> Bool {
        let lowered = key.lowercased()
        return ["password", "secret", "token", "key"].contains { lowered.contains($0) }
    }
}

extension ConfigReader {
    /// A secret given inline (`key`) or as a file holding it (`key_file`, as container secrets are mounted); `nil`
    /// when neither is set. The value is trimmed of surrounding whitespace.
    public func secret(forKey key: String) throws -> String? {
        if let inline = string(forKey: ConfigKey(key), isSecret: true), !inline.isEmpty {
            return inline.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let path = string(forKey: ConfigKey(key + "_file")), !path.isEmpty else { return nil }
        return try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The version every service reports.
public enum PlatformVersion {
    /// Semantic version of this build of the platform.
    public static let current = "0.1.0"
}
