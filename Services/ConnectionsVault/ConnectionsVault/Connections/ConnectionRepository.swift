import Foundation
import Platform

/// Filters of `GET /connections`.
struct ConnectionFilter: Sendable, Equatable {
    var environment: String?
    var tag: String?
    var isActive: Bool?
}

/// Storage of connection metadata.
protocol ConnectionRepository: Sendable {
    /// Creates a connection; a taken `vault_path` throws ``ConnectionStoreError/duplicateVaultPath``.
    func create(_ connection: NewConnection) async throws -> Connection
    func find(id: Int64) async throws -> Connection?
    func list(_ filter: ConnectionFilter) async throws -> [Connection]
    func update(id: Int64, changes: ConnectionChanges) async throws -> Connection?
    func delete(id: Int64) async throws -> Connection?
    /// Records the outcome of a test.
    func recordTest(id: Int64, status: String, at: Date) async throws
}

enum ConnectionStoreError: Error, Equatable {
    case duplicateVaultPath
}

/// Connections in `connections.connections`.
struct PostgresConnectionRepository: ConnectionRepository {
    let postgres: PostgresClient
    let table: PostgresIdentifier

    init(postgres: PostgresClient, schema: String) throws {
        self.postgres = postgres
        self.table = try PostgresIdentifier("connections", schema: schema)
    }

    private static let columns: PostgresQuery = """
        id, name, vault_path, environment, description, tags, is_active, created_at, updated_at, last_tested_at, last_test_status
        """

    func create(_ connection: NewConnection) async throws -> Connection {
        do {
            return try await postgres.query("""
                INSERT INTO \(table) (name, vault_path, environment, description, tags, is_active, created_by)
                VALUES (\(connection.name), \(connection.vaultPath), \(connection.environment), \(connection.description),
                        \(connection.tags), \(connection.isActive), \(connection.createdBy))
                RETURNING \(Self.columns)
                """).map(Self.decode).first!
        } catch let error as PostgresError where error.code == .uniqueViolation {
            throw ConnectionStoreError.duplicateVaultPath
        }
    }

    func find(id: Int64) async throws -> Connection? {
        try await postgres.query("SELECT \(Self.columns) FROM \(table) WHERE id = \(id)").map(Self.decode).first
    }

    func list(_ filter: ConnectionFilter) async throws -> [Connection] {
        try await postgres.query("""
            SELECT \(Self.columns) FROM \(table)
            WHERE (\(filter.environment)::text IS NULL OR environment = \(filter.environment))
              AND (\(filter.tag)::text IS NULL OR \(filter.tag) = ANY (tags))
              AND (\(filter.isActive)::boolean IS NULL OR is_active = \(filter.isActive))
            ORDER BY id
            """).map(Self.decode)
    }

    func update(id: Int64, changes: ConnectionChanges) async throws -> Connection? {
        try await postgres.query("""
            UPDATE \(table) SET name = coalesce(\(changes.name), name), environment = coalesce(\(changes.environment), environment),
                description = coalesce(\(changes.description), description), tags = coalesce(\(changes.tags)::text[], tags),
                is_active = coalesce(\(changes.isActive), is_active), updated_at = now()
            WHERE id = \(id) RETURNING \(Self.columns)
            """).map(Self.decode).first
    }

    func delete(id: Int64) async throws -> Connection? {
        try await postgres.query("DELETE FROM \(table) WHERE id = \(id) RETURNING \(Self.columns)").map(Self.decode).first
    }

    func recordTest(id: Int64, status: String, at: Date) async throws {
        try await postgres.query("UPDATE \(table) SET last_tested_at = \(at), last_test_status = \(status) WHERE id = \(id)")
    }

    private static func decode(_ row: PostgresRow) throws -> Connection {
        Connection(
            id: try row.decode("id"), name: try row.decode("name"), vaultPath: try row.decode("vault_path"),
            environment: try row.decode("environment"), description: try row.decode("description"), tags: try row.decode("tags"),
            isActive: try row.decode("is_active"), createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
            lastTestedAt: try row.decode("last_tested_at"), lastTestStatus: try row.decode("last_test_status"))
    }
}

/// Connections in memory, for unit tests of the connection rules.
actor InMemoryConnectionRepository: ConnectionRepository {
    private var rows: [Int64: Connection] = [:]
    private var nextID: Int64 = 1

    func create(_ new: NewConnection) async throws -> Connection {
        if rows.values.contains(where: { $0.vaultPath == new.vaultPath }) { throw ConnectionStoreError.duplicateVaultPath }
        let now = Date()
        let connection = Connection(id: nextID, name: new.name, vaultPath: new.vaultPath, environment: new.environment,
                                    description: new.description, tags: new.tags, isActive: new.isActive, createdAt: now, updatedAt: now)
        rows[nextID] = connection
        nextID += 1
        return connection
    }

    func find(id: Int64) async throws -> Connection? { rows[id] }

    func list(_ filter: ConnectionFilter) async throws -> [Connection] {
        rows.values.sorted { $0.id < $1.id }.filter { connection in
            (filter.environment.map { $0 == connection.environment } ?? true)
                && (filter.tag.map { connection.tags.contains($0) } ?? true)
                && (filter.isActive.map { $0 == connection.isActive } ?? true)
        }
    }

    func update(id: Int64, changes: ConnectionChanges) async throws -> Connection? {
        guard var connection = rows[id] else { return nil }
        connection.name = changes.name ?? connection.name
        connection.environment = changes.environment ?? connection.environment
        connection.description = changes.description ?? connection.description
        connection.tags = changes.tags ?? connection.tags
        connection.isActive = changes.isActive ?? connection.isActive
        connection.updatedAt = Date()
        rows[id] = connection
        return connection
    }

    func delete(id: Int64) async throws -> Connection? { rows.removeValue(forKey: id) }

    func recordTest(id: Int64, status: String, at: Date) async throws {
        rows[id]?.lastTestedAt = at
        rows[id]?.lastTestStatus = status
    }
}
