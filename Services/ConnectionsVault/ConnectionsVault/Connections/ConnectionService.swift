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

    /// `schema.table`, or `table` in `public`; 404 when there is no such table.
    func table(id: Int64, qualifiedName: String, actor: SecretActor) async throws -> TableSchema {
        let parts = qualifiedName.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let (schema, name) = parts.count == 2 ? (parts[0], parts[1]) : ("public", parts[0])
        guard !schema.isEmpty, !name.isEmpty, schema.count <= 63, name.count <= 63,
              !(schema + name).unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.validation(field: "table", reason: "must be table or schema.table, each at most 63 characters")
        }
        let credentials = try await credentials(of: id, actor: actor)
        guard let table = try await inspector.table(credentials, schema: schema, name: name) else {
            throw APIError.notFound("table", id: "\(schema).\(name)")
        }
        return table
    }

    /// What another service needs to reach the connection's database (`GET /internal/connections/{id}/credentials`).
    /// An inactive connection is refused: its tasks are not meant to run.
    func credentialsForService(id: Int64, actor: SecretActor) async throws -> InternalConnectionCredentials {
        guard let connection = try await connections.find(id: id) else { throw APIError.notFound("connection", id: String(id)) }
        guard connection.isActive else {
            throw APIError(.conflict, code: .connectorError, message: "Connection \(id) is inactive", details: ["connection_id": .number(Double(id))])
        }
        let (credentials, version) = try await latestCredentials(of: connection, actor: actor)
        return InternalConnectionCredentials(
            connectionID: connection.id, name: connection.name, environment: connection.environment, vaultPath: connection.vaultPath,
            secretVersion: version, host: credentials.host, port: credentials.port, database: credentials.database,
            username: credentials.username, password: credentials.password, sslmode: credentials.sslMode)
    }

    /// The credentials from the vault, read for this one use.
    private func credentials(of id: Int64, actor: SecretActor) async throws -> ConnectionCredentials {
        guard let connection = try await connections.find(id: id) else { throw APIError.notFound("connection", id: String(id)) }
        return try await latestCredentials(of: connection, actor: actor).credentials
    }

    private func latestCredentials(of connection: Connection, actor: SecretActor) async throws -> (credentials: ConnectionCredentials, version: Int) {
        guard let secret = try await secrets.read(path: connection.vaultPath, version: nil, actor: actor),
              let credentials = ConnectionCredentials(secretData: secret.data) else {
            throw APIError(.conflict, code: .connectorError, message: "The connection has no complete credentials in the vault")
        }
        return (credentials, secret.version)
    }
}
