import Foundation
import Logging
import Platform
import SharedModels

/// The rules of connections: metadata in PostgreSQL, credentials only in the vault, and nothing half-written
/// when either side fails.
struct ConnectionService: Sendable {
    let connections: any ConnectionRepository
    let secrets: any SecretBackend
    let tester: ConnectionTester
    let inspector: SchemaInspector
    let events: StreamPublisher
    let logger: Logger

    func create(_ request: CreateConnectionRequest, actor: SecretActor) async throws -> Connection {
        try ConnectionRules.validate(name: request.name)
        let environment = request.environment ?? "development"
        try ConnectionRules.validate(environment: environment)
        try ConnectionRules.validate(tags: request.tags ?? [])
        try ConnectionRules.validate(description: request.description ?? "")
        let vaultPath = request.vaultPath ?? ConnectionRules.defaultVaultPath(for: request.name)
        try ConnectionRules.validate(vaultPath: vaultPath)
        let credentials = ConnectionCredentials(
            host: request.host, port: request.port ?? 5432, database: request.database, username: request.username,
            password: request.password, sslMode: request.sslmode ?? "prefer")
        try ConnectionRules.validate(credentials)

        // The row first: its unique vault_path keeps two connections from sharing (and overwriting) a secret.
        let connection: Connection
        do {
            connection = try await connections.create(NewConnection(
                name: request.name, vaultPath: vaultPath, environment: environment, description: request.description ?? "",
                tags: request.tags ?? [], isActive: request.isActive ?? true, createdBy: actor.id))
        } catch ConnectionStoreError.duplicateVaultPath {
            throw APIError(.conflict, code: .duplicateResource, message: "A connection with this vault_path already exists",
                           details: ["field": .string("vault_path")])
        }
        do {
            // A secret already at the path belongs to someone else (another system sharing the vault, or a
            // connection deleted while its secret could not be): it is never overwritten.
            guard try await secrets.versions(path: vaultPath).isEmpty else {
                throw APIError(.conflict, code: .duplicateResource, message: "The vault already holds a secret at this vault_path",
                               details: ["field": .string("vault_path")])
            }
            _ = try await secrets.write(path: vaultPath, data: credentials.secretData, actor: actor)
        } catch {
            _ = try? await connections.delete(id: connection.id)
            throw error
        }
        return connection
    }

    func update(id: Int64, request: UpdateConnectionRequest, actor: SecretActor) async throws -> Connection {
        if let name = request.name { try ConnectionRules.validate(name: name) }
        if let environment = request.environment { try ConnectionRules.validate(environment: environment) }
        if let tags = request.tags { try ConnectionRules.validate(tags: tags) }
        if let description = request.description { try ConnectionRules.validate(description: description) }
        guard let existing = try await connections.find(id: id) else { throw APIError.notFound("connection", id: String(id)) }
        if request.changesCredentials {
            // A new version merged over the latest: changing only the host keeps the password.
            let current = try await secrets.read(path: existing.vaultPath, version: nil, actor: actor)?.data ?? [:]
            var merged = current
            if let host = request.host { merged["host"] = host }
            if let port = request.port { merged["port"] = String(port) }
            if let database = request.database { merged["database"] = database }
            if let username = request.username { merged["username"] = username }
            if let password = request.password { merged["password"] = password }
            if let sslmode = request.sslmode { merged["sslmode"] = sslmode }
            guard let credentials = ConnectionCredentials(secretData: merged) else {
                throw APIError.validation(field: "host", reason: "the vault entry is incomplete: send host, port, database, username and password")
            }
            try ConnectionRules.validate(credentials)
            _ = try await secrets.write(path: existing.vaultPath, data: credentials.secretData, actor: actor)
        }
        let changes = ConnectionChanges(name: request.name, environment: request.environment, description: request.description,
                                        tags: request.tags, isActive: request.isActive)
        guard let updated = try await connections.update(id: id, changes: changes) else { throw APIError.notFound("connection", id: String(id)) }
        return updated
    }

    /// Deletes the connection and every version of its secret, and tells the other services.
    func delete(id: Int64, actor: SecretActor) async throws {
        guard let deleted = try await connections.delete(id: id) else { throw APIError.notFound("connection", id: String(id)) }
        _ = try await secrets.delete(path: deleted.vaultPath, actor: actor)
        do {
            _ = try await events.publish(ConnectionEvent(kind: .deleted, connectionID: Int(deleted.id)))
        } catch {
            logger.error("could not publish connection.deleted", metadata: ["connection_id": "\(deleted.id)", "error": "\(error)"])
        }
    }

    func test(id: Int64, measurePerformance: Bool, actor: SecretActor) async throws -> ConnectionTestResult {
        let result = await tester.test(connectionID: id, credentials: try await credentials(of: id, actor: actor), measurePerformance: measurePerformance)
        try await connections.recordTest(id: id, status: result.testStatus, at: result.testedAt)
        return result
    }

    func tables(id: Int64, actor: SecretActor) async throws -> [TableSummary] {
        try await inspector.tables(try await credentials(of: id, actor: actor))
    }

    /// `schema.table`, or `table` in `public`; 404 when there is no such table. With `activeOnly` (other services'
    /// reads), an inactive connection is refused as ``credentialsForService(id:actor:)`` refuses it.
    func table(id: Int64, qualifiedName: String, actor: SecretActor, activeOnly: Bool = false) async throws -> InternalTableSchema {
        let parts = qualifiedName.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let (schema, name) = parts.count == 2 ? (parts[0], parts[1]) : ("public", parts[0])
        guard !schema.isEmpty, !name.isEmpty, schema.count <= 63, name.count <= 63,
              !(schema + name).unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.validation(field: "table", reason: "must be table or schema.table, each at most 63 characters")
        }
        let credentials = try await credentials(of: id, activeOnly: activeOnly, actor: actor)
        guard let table = try await inspector.table(credentials, schema: schema, name: name) else {
            throw APIError.notFound("table", id: "\(schema).\(name)")
        }
        return table
    }

    /// What another service needs to reach the connection's database (`GET /internal/connections/{id}/credentials`).
    /// An inactive connection is refused: its tasks are not meant to run.
    func credentialsForService(id: Int64, actor: SecretActor) async throws -> InternalConnectionCredentials {
        let connection = try await connection(id: id, activeOnly: true)
        let (credentials, version) = try await latestCredentials(of: connection, actor: actor)
        return InternalConnectionCredentials(
            connectionID: connection.id, name: connection.name, environment: connection.environment, vaultPath: connection.vaultPath,
            secretVersion: version, host: credentials.host, port: credentials.port, database: credentials.database,
            username: credentials.username, password: credentials.password, sslmode: credentials.sslMode)
    }

    /// At most this many active connections are compared by ``matching(host:port:database:actor:)``, the lowest ids
    /// first: each costs a vault read (and its audit record).
    static let matchLimit = 1000
    /// Vault reads a match keeps in flight.
    static let matchConcurrency = 4

    /// The ids of the active connections whose latest credentials name `host` (in any case), `port` (5432 when
    /// `nil`) and `database` (exactly), in id order (`POST /internal/connections/match`). Connections whose vault
    /// entry is missing or incomplete match nothing; a vault that cannot be read fails the whole match rather than
    /// answer with fewer ids.
    func matching(host: String, port: Int?, database: String, actor: SecretActor) async throws -> [Int64] {
        guard !host.isEmpty, host.count <= 255 else { throw APIError.validation(field: "host", reason: "must be 1 to 255 characters") }
        let wantedPort = port ?? 5432
        guard (1...65535).contains(wantedPort) else { throw APIError.validation(field: "port", reason: "must be from 1 to 65535") }
        guard !database.isEmpty, database.count <= 255 else {
            throw APIError.validation(field: "database", reason: "must be 1 to 255 characters")
        }
        let active = try await connections.list(ConnectionFilter(isActive: true))
        if active.count > Self.matchLimit {
            logger.warning("matching compares only the first active connections", metadata: [
                "active": "\(active.count)", "compared": "\(Self.matchLimit)",
            ])
        }
        return try await withThrowingTaskGroup(of: Int64?.self) { group in
            var ids: [Int64] = []
            for (index, connection) in active.prefix(Self.matchLimit).enumerated() {
                // A few reads at a time: each holds a vault thread or a pooled database connection.
                if index >= Self.matchConcurrency, let done = try await group.next(), let id = done { ids.append(id) }
                group.addTask { try await matches(connection, host: host, port: wantedPort, database: database, actor: actor) ? connection.id : nil }
            }
            for try await done in group {
                if let id = done { ids.append(id) }
            }
            return ids.sorted()
        }
    }

    /// Whether the connection's latest credentials name that database; `false` without complete credentials.
    private func matches(_ connection: Connection, host: String, port: Int, database: String, actor: SecretActor) async throws -> Bool {
        guard let credentials = try await storedCredentials(of: connection, actor: actor)?.credentials else { return false }
        return credentials.host.lowercased() == host.lowercased() && credentials.port == port && credentials.database == database
    }

    /// The connection, or 404; with `activeOnly`, 409 when it is inactive (its tasks are not meant to run).
    private func connection(id: Int64, activeOnly: Bool) async throws -> Connection {
        guard let connection = try await connections.find(id: id) else { throw APIError.notFound("connection", id: String(id)) }
        guard connection.isActive || !activeOnly else {
            throw APIError(.conflict, code: .connectorError, message: "Connection \(id) is inactive", details: ["connection_id": .number(Double(id))])
        }
        return connection
    }

    /// The credentials from the vault, read for this one use.
    private func credentials(of id: Int64, activeOnly: Bool = false, actor: SecretActor) async throws -> ConnectionCredentials {
        try await latestCredentials(of: try await connection(id: id, activeOnly: activeOnly), actor: actor).credentials
    }

    private func latestCredentials(of connection: Connection, actor: SecretActor) async throws -> (credentials: ConnectionCredentials, version: Int) {
        guard let latest = try await storedCredentials(of: connection, actor: actor) else {
            throw APIError(.conflict, code: .connectorError, message: "The connection has no complete credentials in the vault")
        }
        return latest
    }

    /// The latest vault version, when it holds complete credentials.
    private func storedCredentials(of connection: Connection, actor: SecretActor) async throws -> (credentials: ConnectionCredentials, version: Int)? {
        guard let secret = try await secrets.read(path: connection.vaultPath, version: nil, actor: actor),
              let credentials = ConnectionCredentials(secretData: secret.data) else { return nil }
        return (credentials, secret.version)
    }
}
