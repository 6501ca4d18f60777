import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Platform
import SharedModels
import Synchronization

/// A connection as deploy checks need it.
struct CatalogConnection: Sendable, Equatable, Decodable {
    var id: Int64
    var name: String
    var isActive: Bool

    enum CodingKeys: String, CodingKey {
        case id, name
        case isActive = "is_active"
    }
}

/// What pipeline-runner asks connections-vault about connections and their databases.
protocol ConnectionCatalog: Sendable {
    /// The connection, `nil` when there is none.
    func connection(_ id: Int64) async throws -> CatalogConnection?
    /// The columns of `table` (`schema.table` or `table`) in the connection's database, `nil` when there is no such table.
    func table(_ table: String, connection id: Int64) async throws -> InternalTableSchema?
    /// The active connections that reach `host:port/database`.
    func matching(host: String, port: Int, database: String) async throws -> [Int64]
    /// What reaches the connection's database, read from the vault for one run; ``CatalogRefusal`` when the
    /// connection is gone or inactive.
    func credentials(_ id: Int64) async throws -> InternalConnectionCredentials
}

/// A connection's database could not be inspected (it is down, or the connection is inactive): a deploy problem.
struct CatalogRefusal: Error, Sendable, Equatable {
    var reason: String
}

/// connections-vault's internal routes.
struct RemoteConnectionCatalog: ConnectionCatalog {
    let caller: ServiceClient

    func connection(_ id: Int64) async throws -> CatalogConnection? {
        let response = try await caller.call(.GET, "/internal/connections/\(id)")
        if response.status == .notFound { return nil }
        return try caller.decode(CatalogConnection.self, from: response)
    }

    func table(_ table: String, connection id: Int64) async throws -> InternalTableSchema? {
        let response = try await caller.call(.GET, "/internal/connections/\(id)/schema/\(ServiceClient.segment(table))")
        switch response.status.code {
        case 200: return try caller.decode(InternalTableSchema.self, from: response)
        case 404: return nil
        case 409, 422, 502:
            throw CatalogRefusal(reason: caller.reason(of: response) ?? "the database of connection \(id) cannot be inspected")
        default: throw caller.unavailable
        }
    }

    func matching(host: String, port: Int, database: String) async throws -> [Int64] {
        let response = try await caller.call(.POST, "/internal/connections/match",
                                             body: InternalConnectionMatchRequest(host: host, port: port, database: database))
        return try caller.decode(InternalConnectionMatchResponse.self, from: response).connectionIDs
    }

    func credentials(_ id: Int64) async throws -> InternalConnectionCredentials {
        let response = try await caller.call(.GET, "/internal/connections/\(id)/credentials")
        switch response.status.code {
        case 200: return try caller.decode(InternalConnectionCredentials.self, from: response)
        case 404: throw CatalogRefusal(reason: "connection \(id) does not exist")
        case 409: throw CatalogRefusal(reason: caller.reason(of: response) ?? "connection \(id) cannot be used")
        default: throw caller.unavailable
        }
    }
}

/// Connections and tables in memory, for unit tests.
final class InMemoryConnectionCatalog: ConnectionCatalog {
    struct Entry: Sendable {
        var connection: CatalogConnection
        var host: String
        var port: Int
        var database: String
        /// Columns by qualified table name (`public.orders`).
        var tables: [String: [String]]
        var credentials: InternalConnectionCredentials? = nil
    }

    private let entries: Mutex<[Int64: Entry]>

    init(_ entries: [Entry] = []) {
        self.entries = Mutex(Dictionary(uniqueKeysWithValues: entries.map { ($0.connection.id, $0) }))
    }

    /// Adds or replaces a connection.
    func put(_ entry: Entry) { entries.withLock { $0[entry.connection.id] = entry } }

    func connection(_ id: Int64) async throws -> CatalogConnection? { entries.withLock { $0[id]?.connection } }

    func table(_ table: String, connection id: Int64) async throws -> InternalTableSchema? {
        let qualified = table.contains(".") ? table : "public." + table
        guard let columns = entries.withLock({ $0[id]?.tables[qualified] }) else { return nil }
        let parts = qualified.split(separator: ".", maxSplits: 1).map(String.init)
        return InternalTableSchema(schema: parts[0], tableName: parts[1], columns: columns.map {
            InternalTableSchema.Column(name: $0, type: "text", nullable: true, primaryKey: false)
        })
    }

    func credentials(_ id: Int64) async throws -> InternalConnectionCredentials {
        guard let credentials = entries.withLock({ $0[id]?.credentials }) else { throw CatalogRefusal(reason: "connection \(id) does not exist") }
        return credentials
    }

    func matching(host: String, port: Int, database: String) async throws -> [Int64] {
        entries.withLock { entries in
            entries.values.filter { $0.connection.isActive && $0.host.lowercased() == host.lowercased() && $0.port == port && $0.database == database }
                .map(\.connection.id).sorted()
        }
    }
}
