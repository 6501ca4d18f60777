@testable import ConnectionsVault
import Crypto
import Foundation
import Platform
import PlatformTesting
import SharedModels
import Synchronization
import Testing

/// Keeps the audit records a test caused; can be told to fail, as an unavailable audit stream would.
final class RecordingAuditor: SecretAuditor {
    private let state = Mutex<(events: [AuditEvent], failing: Bool)>(([], false))
    var events: [AuditEvent] { state.withLock { $0.events } }
    func fail(_ failing: Bool) { state.withLock { $0.failing = failing } }

    func record(_ event: AuditEvent) async throws {
        try state.withLock { state in
            if state.failing { throw RedisError(code: .connectionFailure, reason: "audit stream unavailable") }
            state.events.append(event)
        }
    }
}

extension Integration {
    @Suite struct VaultTests {
        static func keyText(_ id: String) -> String {
            "\(id):" + SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString()
        }

        /// Each test works in a schema of its own, so a rewrap sees only its rows.
        func withBackend(
            keys: String, active: String? = nil, retained: Int = 3, schema: String = TestEnvironment.uniqueName("vault"),
            _ body: (Vault, RecordingAuditor, PostgresClient) async throws -> Void
        ) async throws {
            let postgres = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 4, logger: TestEnvironment.logger)
            try await withServices([postgres]) {
                try await Migrator(schema: schema, migrations: ConnectionsVaultService.migrations(),
                                   logger: TestEnvironment.logger).migrate(using: postgres)
                let auditor = RecordingAuditor()
                let builtIn = try BuiltInSecretBackend(
                    postgres: postgres, schema: schema,
                    sealer: SecretSealer(keyring: try MasterKeyring(configuration: keys, active: active)), retainedVersions: retained)
                try await body(Vault(builtIn: builtIn, auditor: auditor), auditor, postgres)
            }
        }

        /// The built-in engine as the service runs it: behind the audit trail.
        struct Vault: SecretBackend {
            let builtIn: BuiltInSecretBackend
            let audited: AuditedSecretBackend

            init(builtIn: BuiltInSecretBackend, auditor: any SecretAuditor) {
                self.builtIn = builtIn
                self.audited = AuditedSecretBackend(backend: builtIn, auditor: auditor)
            }

            func write(path: String, data: [String: String], actor: SecretActor) async throws -> Int {
                try await audited.write(path: path, data: data, actor: actor)
            }
            func read(path: String, version: Int?, actor: SecretActor) async throws -> SecretVersion? {
                try await audited.read(path: path, version: version, actor: actor)
            }
            func delete(path: String, actor: SecretActor) async throws -> Bool { try await audited.delete(path: path, actor: actor) }
            func versions(path: String) async throws -> [Int] { try await audited.versions(path: path) }
            func rewrapAll() async throws -> Int { try await builtIn.rewrapAll() }
        }

        let actor = SecretActor(id: "user_1", service: "connections-vault")

        @Test func versionsAreKeptReadAndDeletedWithAnAuditTrail() async throws {
            let schema = TestEnvironment.uniqueName("vault")
            try await withBackend(keys: Self.keyText("k1"), retained: 2, schema: schema) { backend, auditor, postgres in
                let path = "secret/test/" + TestEnvironment.uniqueName("versions")
                let password = "Pw-" + TestEnvironment.uniqueName("x")
                #expect(try await backend.write(path: path, data: ["host": "a", "password": password], actor: actor) == 1)
                #expect(try await backend.write(path: path, data: ["host": "b", "password": password], actor: actor) == 2)
                #expect(try await backend.write(path: path, data: ["host": "c", "password": password], actor: actor) == 3)
                #expect(try await backend.versions(path: path) == [2, 3])
                let latest = try #require(try await backend.read(path: path, version: nil, actor: actor))
                #expect(latest.version == 3)
                #expect(latest.data == ["host": "c", "password": password])
                #expect(try await backend.read(path: path, version: 2, actor: actor)?.data["host"] == "b")
                #expect(try await backend.read(path: path, version: 1, actor: actor) == nil)

                // Nothing readable is stored: the password is in no column of the vault tables.
                let stored = try await postgres.query("""
                    SELECT encode(wrapped_key, 'escape') || encode(ciphertext, 'escape') || key_id AS everything
                    FROM \(try PostgresIdentifier("vault_secret_versions", schema: schema)) WHERE path = \(path)
                    """)
                #expect(stored.count == 2)
                for row in stored { #expect(!(try row.decode("everything", as: String.self)).contains(password)) }

                #expect(try await backend.delete(path: path, actor: actor))
                #expect(try await backend.versions(path: path) == [])
                #expect(try await backend.read(path: path, version: nil, actor: actor) == nil)
                #expect(try await !backend.delete(path: path, actor: actor))

                let actions = auditor.events.filter { $0.resource == path }.map(\.action)
                #expect(actions == ["secret.write", "secret.write", "secret.write", "secret.read", "secret.read", "secret.delete"])
                #expect(auditor.events.allSatisfy { $0.actor == "user_1" && $0.service == "connections-vault" })
                let encoded = try JSONEncoder().encode(auditor.events)
                #expect(String(decoding: encoded, as: UTF8.self).contains(password) == false)
            }
        }

        @Test func aSecretIsNotReadWithoutAnAuditRecord() async throws {
            try await withBackend(keys: Self.keyText("k1")) { backend, auditor, _ in
                let path = "secret/test/" + TestEnvironment.uniqueName("audit")
                _ = try await backend.write(path: path, data: ["password": "x"], actor: actor)
                auditor.fail(true)
                await #expect(throws: RedisError.self) { try await backend.read(path: path, version: nil, actor: actor) }
                auditor.fail(false)
                #expect(try await backend.read(path: path, version: nil, actor: actor)?.data["password"] == "x")
            }
        }

        @Test func tamperedRowsDoNotOpen() async throws {
            let schema = TestEnvironment.uniqueName("vault")
            try await withBackend(keys: Self.keyText("k1"), schema: schema) { backend, _, postgres in
                let path = "secret/test/" + TestEnvironment.uniqueName("tamper")
                _ = try await backend.write(path: path, data: ["password": "x"], actor: actor)
                try await postgres.query("""
                    UPDATE \(try PostgresIdentifier("vault_secret_versions", schema: schema))
                    SET ciphertext = overlay(ciphertext PLACING '\\xff'::bytea FROM 20 FOR 1) WHERE path = \(path)
                    """)
                await #expect(throws: VaultError.tampered) { try await backend.read(path: path, version: nil, actor: actor) }
            }
        }

        /// `connections-vault rewrap` against the service's own schema: forward to a new key (after which the old
        /// one could be retired), then back, so the rest of the run keeps its key.
        @Test func theRewrapCommandRotatesTheServiceVault() async throws {
            let runKeys = try TestEnvironment.require("VAULT_MASTER_KEYS")
            let runKeyID = String(runKeys.split(separator: ":")[0])
            let next = Self.keyText("next")
            let path = "secret/test/" + TestEnvironment.uniqueName("command")
            let schema = ConnectionsVaultService.schema
            try await withBackend(keys: runKeys, schema: schema) { backend, _, _ in
                _ = try await backend.write(path: path, data: ["password": "kept"], actor: actor)
            }
            func rewrap(active: String) async throws {
                let settings = try await TestEnvironment.serviceSettings(
                    serviceName: ConnectionsVaultService.name,
                    overrides: ["VAULT_MASTER_KEYS": "\(runKeys),\(next)", "VAULT_ACTIVE_KEY": active])
                try await ConnectionsVaultService.rewrap(settings: settings, logger: TestEnvironment.logger)
            }
            try await rewrap(active: "next")
            try await withBackend(keys: next, schema: schema) { backend, _, _ in
                let password = try await backend.read(path: path, version: nil, actor: actor)?.data["password"]
                #expect(password == "kept")
            }
            try await rewrap(active: runKeyID)
            try await withBackend(keys: runKeys, schema: schema) { backend, _, _ in
                #expect(try await backend.read(path: path, version: nil, actor: actor)?.data["password"] == "kept")
                _ = try await backend.delete(path: path, actor: actor)
            }
        }

        @Test func rewrapMovesEveryVersionToTheActiveKey() async throws {
            let old = Self.keyText("old"), new = Self.keyText("new")
            let path = "secret/test/" + TestEnvironment.uniqueName("rewrap")
            let schema = TestEnvironment.uniqueName("vault")
            try await withBackend(keys: old, schema: schema) { backend, _, _ in
                _ = try await backend.write(path: path, data: ["password": "one"], actor: actor)
                _ = try await backend.write(path: path, data: ["password": "two"], actor: actor)
            }
            try await withBackend(keys: "\(old),\(new)", active: "new", schema: schema) { backend, _, postgres in
                #expect(try await backend.rewrapAll() == 2)
                let table = try PostgresIdentifier("vault_secret_versions", schema: schema)
                let keyIDs = try await postgres.query("SELECT DISTINCT key_id FROM \(table) WHERE path = \(path)")
                    .map { try $0.decode("key_id", as: String.self) }
                #expect(keyIDs == ["new"])
            }
            // The old key is retired: everything still opens.
            try await withBackend(keys: new, schema: schema) { backend, _, _ in
                #expect(try await backend.read(path: path, version: 1, actor: actor)?.data["password"] == "one")
                #expect(try await backend.read(path: path, version: 2, actor: actor)?.data["password"] == "two")
                _ = try await backend.delete(path: path, actor: actor)
            }
        }
    }
}
