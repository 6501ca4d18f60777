import Foundation
import Logging
import NIOCore
import NIOPosix
import Platform
import ServiceLifecycle

/// The servers `deploy/local.sh test` started, as the environment describes them.
///
/// When `PLATFORM_INTEGRATION=1` (set by `deploy/local.sh test` and so by CI) the integration tests run and a
/// missing variable fails them; otherwise, without `POSTGRES_PORT`, they are disabled.
public enum TestEnvironment {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// True when integration tests should run.
    public static var isEnabled: Bool {
        environment["PLATFORM_INTEGRATION"] == "1" || environment["POSTGRES_PORT"] != nil
    }

    /// Reads a required variable.
    public static func require(_ name: String) throws -> String {
        guard let value = environment[name], !value.isEmpty else { throw MissingVariable(name: name) }
        return value
    }

    /// The platform database.
    public static func postgres(applicationName: String = "platform-tests") throws -> PostgresConfiguration {
        PostgresConfiguration(
            host: try require("POSTGRES_HOST"), port: Int(try require("POSTGRES_PORT")) ?? 0,
            username: try require("POSTGRES_USER"), password: environment["POSTGRES_PASSWORD"],
            database: try require("POSTGRES_DATABASE"), sslMode: "disable", applicationName: applicationName)
    }

    /// The Redis server.
    /// The superuser `postgres` over the test server's unix socket (trust), for what the platform role may not do:
    /// roles, databases, `CHECKPOINT`.
    public static func superuserPostgres() throws -> PostgresConfiguration {
        var superuser = try postgres()
        superuser.host = try require("PLATFORM_TEST_PG_SUPERUSER_SOCKET")
        superuser.username = try require("PLATFORM_TEST_PG_SUPERUSER")
        superuser.password = nil
        return superuser
    }

    public static func redis() throws -> RedisConfiguration {
        RedisConfiguration(host: try require("REDIS_HOST"), port: Int(try require("REDIS_PORT")) ?? 0)
    }

    /// Settings for booting a service against the test servers on a free port (`http.port` 0).
    public static func serviceSettings(serviceName: String, overrides: [String: String] = [:]) async throws -> ServiceSettings {
        let reader = try await ServiceSettings.makeReader(
            arguments: [],
            environment: environment.merging(["HTTP_PORT": "0", "LOG_LEVEL": "warning"].merging(overrides) { _, new in new }) { _, new in new },
            environmentFile: nil)
        return ServiceSettings(reader: reader, serviceName: serviceName, defaultPort: 0)
    }

    /// Restarts PostgreSQL in place with the script `deploy/local.sh test` wrote; returns when it serves again.
    public static func restartPostgres() async throws {
        try await runScript(try require("PLATFORM_TEST_PG_RESTART"))
    }

    /// Restarts Redis in place (its data is lost: the test server is not durable); returns when it serves again.
    public static func restartRedis() async throws {
        try await runScript(try require("PLATFORM_TEST_REDIS_RESTART"))
    }

    /// Runs a script and waits for it on a blocking thread. Not Foundation's `Process`: its `waitUntilExit`
    /// never returned here once the script had started a daemon (the restarted server) that kept its pipes.
    private static func runScript(_ path: String) async throws {
        let status = try await NIOThreadPool.singleton.runIfActive { system(path) }
        guard status == 0 else { throw ScriptFailed(path: path, status: status) }
    }

    /// A variable the integration tests need is not set.
    public struct MissingVariable: Error, CustomStringConvertible {
        /// Its name.
        public let name: String
        public var description: String { "\(name) is not set: run the tests through deploy/local.sh test" }
    }

    /// A helper script exited non-zero.
    public struct ScriptFailed: Error, CustomStringConvertible {
        /// The script.
        public let path: String
        /// Its exit status.
        public let status: Int32
        public var description: String { "\(path) exited with \(status)" }
    }

    /// A quiet logger for tests.
    public static var logger: Logger {
        var logger = Logger(label: "tests")
        logger.logLevel = .warning
        return logger
    }

    /// A name unique to this test run, for schemas, databases and stream keys.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UInt32.random(in: .min ... .max))_\(UInt32.random(in: .min ... .max))"
    }
}

/// Runs `services` (pools, workers) in the background while `body` runs, then cancels them and waits.
public func withServices<T: Sendable>(
    _ services: [any Service], _ body: () async throws -> T
) async throws -> T {
    try await withRunningServices(services, body)
}

/// Polls `condition` until it is true or `timeout` passes; returns whether it became true.
public func waitUntil(
    timeout: Duration, interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

extension TestEnvironment {
    /// A loopback TCP port that was free a moment ago (the kernel picked it; it is closed again at once).
    public static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        guard let port = channel.localAddress?.port else { throw MissingVariable(name: "a free port") }
        return port
    }
}

/// The deadline of ``withDeadline(_:_:)`` passed before its body finished.
public struct DeadlinePassed: Error, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "not finished within \(timeout)" }
}

/// Runs `body`, cancelling it and throwing ``DeadlinePassed`` if it has not finished within `timeout`: for tests
/// that wait on something that arrives by itself (a message, a socket's close) rather than on a condition to poll.
public func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let result = try await group.next() ?? nil else { throw DeadlinePassed(timeout: timeout) }
        return result
    }
}
