@testable import ConnectionsVault
import Foundation
import Logging
import NIOPosix
import Platform
import Testing

/// The rules around connections and their secrets, over the in-memory stores.
@Suite struct ConnectionServiceTests {
    let connections = InMemoryConnectionRepository()
    let secrets = InMemorySecretBackend()
    let actor = SecretActor(id: "user_1", service: "connections-vault")

    var service: ConnectionService {
        // Redis is never reached here except by delete's event, whose failure is only logged (quietly here).
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let redis = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: 1), logger: logger)
        return ConnectionService(
            connections: connections, secrets: secrets,
            tester: ConnectionTester(threadPool: .singleton, connectTimeoutSeconds: 1),
            inspector: SchemaInspector(threadPool: .singleton, connectTimeoutSeconds: 1),
            events: StreamPublisher(redis: redis), logger: logger)
    }

    func request(name: String = "Sales", vaultPath: String? = nil) -> CreateConnectionRequest {
        CreateConnectionRequest(name: name, vaultPath: vaultPath, environment: "staging", description: nil, tags: ["a"], isActive: nil,
                                host: "db.example.com", port: 5432, database: "sales", username: "etl", password: "pw-1", sslmode: nil)
    }

    @Test func aFailedVaultWriteLeavesNoConnectionBehind() async throws {
        await secrets.failWrites(true)
        await #expect(throws: VaultError.self) { try await service.create(request(), actor: actor) }
        #expect(try await connections.list(ConnectionFilter()).isEmpty)
    }

    @Test func credentialsGoOnlyToTheVaultAndMergeOnUpdate() async throws {
        let created = try await service.create(request(), actor: actor)
        #expect(created.vaultPath == "secret/database/connections/sales")
        #expect(try await secrets.read(path: created.vaultPath, version: nil, actor: actor)?.data["password"] == "pw-1")

        var change = UpdateConnectionRequest()
        change.host = "db2.example.com"
        _ = try await service.update(id: created.id, request: change, actor: actor)
        let latest = try #require(try await secrets.read(path: created.vaultPath, version: nil, actor: actor))
        #expect(latest.version == 2)
        #expect(latest.data["host"] == "db2.example.com")
        #expect(latest.data["password"] == "pw-1")

        var metadataOnly = UpdateConnectionRequest()
        metadataOnly.description = "moved"
        _ = try await service.update(id: created.id, request: metadataOnly, actor: actor)
        #expect(try await secrets.versions(path: created.vaultPath) == [1, 2])
    }

    @Test func duplicateVaultPathsAreConflictsAndDeleteRemovesTheSecret() async throws {
        let first = try await service.create(request(), actor: actor)
        do {
            _ = try await service.create(request(name: "Other", vaultPath: first.vaultPath), actor: actor)
            Issue.record("a second connection took the same vault path")
        } catch let error as APIError {
            #expect(error.status == .conflict)
        }
        // The first connection's secret was not overwritten.
        #expect(try await secrets.versions(path: first.vaultPath) == [1])
        // Nor is a secret that no connection owns.
        let foreign = "secret/shared/payments"
        _ = try await secrets.write(path: foreign, data: ["password": "theirs"], actor: actor)
        do {
            _ = try await service.create(request(name: "Intruder", vaultPath: foreign), actor: actor)
            Issue.record("a connection took over a secret it did not create")
        } catch let error as APIError {
            #expect(error.status == .conflict)
        }
        #expect(try await secrets.read(path: foreign, version: nil, actor: actor)?.data == ["password": "theirs"])
        #expect(try await connections.list(ConnectionFilter()).allSatisfy { $0.vaultPath != foreign })
        try await service.delete(id: first.id, actor: actor)
        #expect(try await secrets.versions(path: first.vaultPath) == [])
        #expect(try await connections.find(id: first.id) == nil)
    }
}
