import Crypto
import Foundation
import Logging
import NIOPosix
import Platform
import SharedModels

/// Measures the built-in vault for `bench/vault` (through `platform-bench vault`): sealed writes and reads of
/// 1 KB secrets against the same writes and reads of the plaintext in a plain table, in one run.
public enum VaultBenchmark {
    /// Operations per second of each kind, and connection-test latencies in milliseconds.
    public struct Report: Sendable {
        public var sealedWrites: Double
        public var plainWrites: Double
        public var sealedReads: Double
        public var plainReads: Double
        /// p50 and p99 of a connection test with the credentials read from the vault first (as the service does).
        public var testFromVault: (p50: Double, p99: Double)
        /// p50 and p99 of the same test with the credentials already in memory.
        public var testInMemory: (p50: Double, p99: Double)
    }

    /// Runs `operations` of each kind with `concurrency` callers, in a throwaway schema it drops afterwards.
    public static func run(postgres configuration: PostgresConfiguration, operations: Int, concurrency: Int, logger: Logger) async throws -> Report {
        let postgres = PostgresClient(configuration: configuration, maxConnections: concurrency, logger: logger)
        return try await withRunningServices([postgres]) {
            let schema = "vault_bench_\(UInt32.random(in: .min ... .max))"
            let migrator = try Migrator(schema: schema, migrations: ConnectionsVaultService.migrations(), logger: logger)
            try await migrator.migrate(using: postgres)
            let plain = try PostgresIdentifier("plain_secrets", schema: schema)
            try await postgres.query("CREATE TABLE \(plain) (path text, version int, data text, PRIMARY KEY (path, version))")

            let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString()
            let backend = try BuiltInSecretBackend(
                postgres: postgres, schema: schema, sealer: SecretSealer(keyring: try MasterKeyring(configuration: "bench:\(key)", active: nil)),
                retainedVersions: 10)
            let actor = SecretActor(id: "bench", service: "platform-bench")
            let value = String(repeating: "x", count: 1000)
            let data = ["password": value]

            let sealedWrites = try await rate(operations, concurrency) { index in
                _ = try await backend.write(path: "bench/\(index)", data: data, actor: actor)
            }
            let plainWrites = try await rate(operations, concurrency) { index in
                try await postgres.query("INSERT INTO \(plain) VALUES (\("bench/\(index)"), 1, \(value))")
            }
            let sealedReads = try await rate(operations, concurrency) { index in
                guard try await backend.read(path: "bench/\(index)", version: nil, actor: actor)?.data["password"] == value else {
                    throw VaultError.tampered
                }
            }
            let plainReads = try await rate(operations, concurrency) { index in
                guard try await postgres.query("SELECT data FROM \(plain) WHERE path = \("bench/\(index)") ORDER BY version DESC LIMIT 1")
                    .first?.decode("data", as: String.self) == value else { throw VaultError.tampered }
            }
            // Connection tests against the same server, with the benchmark's own credentials.
            let credentials = ConnectionCredentials(
                host: configuration.host, port: configuration.port, database: configuration.database, username: configuration.username,
                password: configuration.password ?? "", sslMode: configuration.sslMode)
            _ = try await backend.write(path: "bench/credentials", data: credentials.secretData, actor: actor)
            let threads = ThreadPoolService(threads: 2)
            let tester = ConnectionTester(threadPool: threads.threadPool, connectTimeoutSeconds: 5)
            var fromVault: [Double] = []
            var inMemory: [Double] = []
            for _ in 0..<50 {
                var start = ContinuousClock.now
                let secret = try await backend.read(path: "bench/credentials", version: nil, actor: actor)
                let read = ConnectionCredentials(secretData: secret?.data ?? [:]) ?? credentials
                guard await tester.test(connectionID: 0, credentials: read, measurePerformance: false).testStatus == "success" else { throw VaultError.tampered }
                fromVault.append((ContinuousClock.now - start).secondsValue * 1000)
                start = ContinuousClock.now
                guard await tester.test(connectionID: 0, credentials: credentials, measurePerformance: false).testStatus == "success" else { throw VaultError.tampered }
                inMemory.append((ContinuousClock.now - start).secondsValue * 1000)
            }
            try await threads.threadPool.shutdownGracefully()
            try await postgres.query("DROP SCHEMA \(try PostgresIdentifier(schema)) CASCADE")
            return Report(sealedWrites: sealedWrites, plainWrites: plainWrites, sealedReads: sealedReads, plainReads: plainReads,
                          testFromVault: percentiles(fromVault), testInMemory: percentiles(inMemory))
        }
    }

    private static func percentiles(_ samples: [Double]) -> (p50: Double, p99: Double) {
        (samples.percentile(0.5), samples.percentile(0.99))
    }

    /// Runs `operation(0..<count)` with `concurrency` workers; operations per second.
    private static func rate(_ count: Int, _ concurrency: Int, _ operation: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var index = worker
                    while index < count {
                        try await operation(index)
                        index += concurrency
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(count) / (ContinuousClock.now - start).secondsValue
    }
}
