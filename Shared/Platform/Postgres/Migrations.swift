import Crypto
import Foundation
import Logging

/// One versioned SQL file of a service's schema.
public struct Migration: Sendable, Equatable {
    /// Its order: files apply in ascending version.
    public let version: Int
    /// The descriptive part of the file name.
    public let name: String
    /// The SQL, which may hold several statements.
    public let sql: String

    /// Creates a migration.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// SHA-256 of the SQL, recorded so an edited, already-applied file is noticed.
    public var checksum: String {
        SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// A problem with the set of migration files or with what the database recorded.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, naming files and versions only.
    public let reason: String
    public var description: String { "MigrationError(\(reason))" }
}

/// Finds a service's migrations: files named `NNNN_description.sql`.
public enum MigrationSource {
    /// Parses a file name into (version, name), or `nil` when it is not a migration file.
    public static func parse(fileName: String) -> (version: Int, name: String)? {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_"),
            let version = Int(stem[..<underscore]), version > 0
        else { return nil }
        return (version, String(stem[stem.index(after: underscore)...]))
    }

    /// Orders migrations by version and refuses duplicate versions.
    public static func ordered(_ migrations: [Migration]) throws -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw MigrationError(reason: "two migrations have version \(next.version): \(previous.name), \(next.name)")
        }
        return sorted
    }

    /// Loads every `NNNN_*.sql` file of a directory (other files are ignored), in order.
    public static func load(directory: URL) throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        let migrations = try names.compactMap { fileName -> Migration? in
            guard let (version, name) = parse(fileName: fileName) else { return nil }
            let sql = try String(contentsOf: directory.appendingPathComponent(fileName), encoding: .utf8)
            return Migration(version: version, name: name, sql: sql)
        }
        return try ordered(migrations)
    }
}

/// Applies a service's migrations to its own schema, once, even when replicas start together.
///
/// A session-level advisory lock keyed by the schema serialises runners; each migration runs in its own
/// transaction with `search_path` set to the schema and is recorded in `<schema>.schema_migrations`.
public struct Migrator: Sendable {
    /// The schema the migrations build.
    public let schema: String
    /// The migrations, in order.
    public let migrations: [Migration]
    private let logger: Logger

    /// Creates a migrator; fails on duplicate versions.
    public init(schema: String, migrations: [Migration], logger: Logger) throws {
        self.schema = schema
        self.migrations = try MigrationSource.ordered(migrations)
        self.logger = logger
    }

    /// Applies what is missing and returns the versions applied by this call.
    @discardableResult
    public func migrate(using client: PostgresClient) async throws -> [Int] {
        try await client.withConnection { try await migrate(on: $0) }
    }

    /// Applies what is missing on one connection and returns the versions applied by this call.
    @discardableResult
    public func migrate(on connection: PostgresConnection) async throws -> [Int] {
        let schemaName = try PostgresIdentifier(schema)
        let table = try PostgresIdentifier("schema_migrations", schema: schema)
        let lockKey = "migrations:\(schema)"
        try await connection.query("SELECT pg_advisory_lock(hashtext(\(lockKey)))")
        do {
            let applied = try await applyPending(on: connection, schemaName: schemaName, table: table)
            try await connection.query("SELECT pg_advisory_unlock(hashtext(\(lockKey)))")
            return applied
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(hashtext(\(lockKey)))")
            throw error
        }
    }

    private func applyPending(
        on connection: PostgresConnection, schemaName: PostgresIdentifier, table: PostgresIdentifier
    ) async throws -> [Int] {
        try await connection.query("CREATE SCHEMA IF NOT EXISTS \(schemaName)")
        try await connection.query("""
            CREATE TABLE IF NOT EXISTS \(table) (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        var recorded: [Int: String] = [:]
        for row in try await connection.query("SELECT version, checksum FROM \(table)") {
            recorded[try row.decode("version")] = try row.decode("checksum", as: String.self)
        }
        var applied: [Int] = []
        for migration in migrations {
            if let checksum = recorded[migration.version] {
                guard checksum == migration.checksum else {
                    throw MigrationError(
                        reason: "migration \(migration.version)_\(migration.name) of schema \(schema) was edited after it was applied")
                }
                continue
            }
            try await connection.withTransaction { connection in
                try await connection.query("SELECT set_config('search_path', \(schema), true)")
                try await connection.executeScript(migration.sql)
                try await connection.query(
                    "INSERT INTO \(table) (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))")
            }
            logger.info("migration applied", metadata: ["schema": "\(schema)", "version": "\(migration.version)", "name": "\(migration.name)"])
            applied.append(migration.version)
        }
        return applied
    }
}
