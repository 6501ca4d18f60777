import Foundation
import Logging
import Platform
import SharedModels

/// Who touches a secret, for the audit trail: a user (`user_3`) or a service (`service:scheduler`).
struct SecretActor: Sendable, Equatable {
    /// The id recorded as the actor.
    var id: String
    /// The service through which it acted.
    var service: String
}

extension SecretActor {
    /// The caller of a request, as the audit trail names it.
    init(_ context: PlatformRequestContext, service: String) {
        self.init(id: context.user?.userID ?? context.callingService.map { "service:\($0)" } ?? "anonymous", service: service)
    }
}

/// One version of a secret.
struct SecretVersion: Sendable, Equatable {
    var path: String
    var version: Int
    /// The secret's fields (`host`, `password`, ...).
    var data: [String: String]
    var createdAt: Date
}

/// A key-value secrets engine with versions (KV-v2-like): write a new version, read the latest or a given
/// one, delete every version. The built-in engine and HashiCorp Vault both sit behind this protocol.
protocol SecretBackend: Sendable {
    /// Stores `data` as the next version of `path`; returns its number.
    func write(path: String, data: [String: String], actor: SecretActor) async throws -> Int
    /// The latest version, or the given one; `nil` when there is none.
    func read(path: String, version: Int?, actor: SecretActor) async throws -> SecretVersion?
    /// Deletes every version; false when the path did not exist.
    func delete(path: String, actor: SecretActor) async throws -> Bool
    /// The version numbers kept for a path, oldest first.
    func versions(path: String) async throws -> [Int]
}

/// Records secret operations in the audit trail. The record names the path, never any secret material.
protocol SecretAuditor: Sendable {
    func record(_ event: AuditEvent) async throws
}

/// Audit records to the `platform:audit` stream.
struct StreamSecretAuditor: SecretAuditor {
    let publisher: StreamPublisher

    func record(_ event: AuditEvent) async throws {
        _ = try await publisher.publish(event)
    }
}

/// Any backend with every read, write and delete in the audit trail. Auditing is first-class: if the record cannot
/// be written the operation fails, and a secret that was read is not handed out without a trace.
struct AuditedSecretBackend: SecretBackend {
    let backend: any SecretBackend
    let auditor: any SecretAuditor

    func write(path: String, data: [String: String], actor: SecretActor) async throws -> Int {
        let version = try await backend.write(path: path, data: data, actor: actor)
        try await audit("secret.write", path: path, actor: actor, details: ["version": .number(Double(version))])
        return version
    }

    func read(path: String, version: Int?, actor: SecretActor) async throws -> SecretVersion? {
        guard let secret = try await backend.read(path: path, version: version, actor: actor) else { return nil }
        try await audit("secret.read", path: path, actor: actor, details: ["version": .number(Double(secret.version))])
        return secret
    }

    func delete(path: String, actor: SecretActor) async throws -> Bool {
        let deleted = try await backend.delete(path: path, actor: actor)
        if deleted { try await audit("secret.delete", path: path, actor: actor, details: [:]) }
        return deleted
    }

    func versions(path: String) async throws -> [Int] {
        try await backend.versions(path: path)
    }

    private func audit(_ action: String, path: String, actor: SecretActor, details: [String: JSONValue]) async throws {
        try await auditor.record(AuditEvent(actor: actor.id, action: action, resource: path, service: actor.service, details: details))
    }
}

/// The built-in engine: sealed versions in PostgreSQL (`vault_secrets`, `vault_secret_versions`), keeping the
/// last `retainedVersions`.
struct BuiltInSecretBackend: SecretBackend {
    let postgres: PostgresClient
    let sealer: SecretSealer
    let retainedVersions: Int
    private let secrets: PostgresIdentifier
    private let versionsTable: PostgresIdentifier

    init(postgres: PostgresClient, schema: String, sealer: SecretSealer, retainedVersions: Int) throws {
        self.postgres = postgres
        self.sealer = sealer
        self.retainedVersions = max(1, retainedVersions)
        self.secrets = try PostgresIdentifier("vault_secrets", schema: schema)
        self.versionsTable = try PostgresIdentifier("vault_secret_versions", schema: schema)
    }

    func write(path: String, data: [String: String], actor: SecretActor) async throws -> Int {
        let plaintext = try JSONEncoder.platform.encode(data)
        let version = try await postgres.withTransaction { connection in
            let current = try await connection.query("""
                INSERT INTO \(secrets) (path, current_version) VALUES (\(path), 1)
                ON CONFLICT (path) DO UPDATE SET current_version = \(secrets).current_version + 1, updated_at = now()
                RETURNING current_version
                """).first!.decode("current_version", as: Int.self)
            let sealed = try sealer.seal(plaintext, path: path, version: current)
            try await connection.query("""
                INSERT INTO \(versionsTable) (path, version, key_id, wrapped_key, ciphertext)
                VALUES (\(path), \(current), \(sealed.keyID), \(PostgresBytes(sealed.wrappedKey)), \(PostgresBytes(sealed.ciphertext)))
                """)
            try await connection.query("DELETE FROM \(versionsTable) WHERE path = \(path) AND version <= \(current - retainedVersions)")
            return current
        }
        return version
    }

    func read(path: String, version: Int?, actor: SecretActor) async throws -> SecretVersion? {
        let rows: PostgresRows
        if let version {
            rows = try await postgres.query("""
                SELECT version, key_id, wrapped_key, ciphertext, created_at FROM \(versionsTable) WHERE path = \(path) AND version = \(version)
                """)
        } else {
            rows = try await postgres.query("""
                SELECT version, key_id, wrapped_key, ciphertext, created_at FROM \(versionsTable)
                WHERE path = \(path) ORDER BY version DESC LIMIT 1
                """)
        }
        guard let row = rows.first else { return nil }
        let number = try row.decode("version", as: Int.self)
        let sealed = SealedSecret(keyID: try row.decode("key_id"), wrappedKey: try row.decode("wrapped_key", as: PostgresBytes.self).bytes,
                                  ciphertext: try row.decode("ciphertext", as: PostgresBytes.self).bytes)
        let data = try JSONDecoder().decode([String: String].self, from: sealer.unseal(sealed, path: path, version: number))
        return SecretVersion(path: path, version: number, data: data, createdAt: try row.decode("created_at"))
    }

    func delete(path: String, actor: SecretActor) async throws -> Bool {
        try await postgres.query("DELETE FROM \(secrets) WHERE path = \(path) RETURNING path").count == 1
    }

    func versions(path: String) async throws -> [Int] {
        try await postgres.query("SELECT version FROM \(versionsTable) WHERE path = \(path) ORDER BY version")
            .map { try $0.decode("version", as: Int.self) }
    }

    /// Rewraps every data key not wrapped by the active master key, in batches, while the service keeps
    /// serving (each version is updated only if nobody changed it meanwhile). Returns how many it rewrapped.
    func rewrapAll(batchSize: Int = 500) async throws -> Int {
        var total = 0
        while true {
            let rows = try await postgres.query("""
                SELECT path, version, key_id, wrapped_key, ciphertext FROM \(versionsTable)
                WHERE key_id <> \(sealer.keyring.activeKeyID) ORDER BY path, version LIMIT \(batchSize)
                """)
            if rows.count == 0 { return total }
            var progressed = 0
            for row in rows {
                let path = try row.decode("path", as: String.self)
                let version = try row.decode("version", as: Int.self)
                let old = SealedSecret(keyID: try row.decode("key_id"), wrappedKey: try row.decode("wrapped_key", as: PostgresBytes.self).bytes,
                                       ciphertext: try row.decode("ciphertext", as: PostgresBytes.self).bytes)
                let new = try sealer.rewrap(old, path: path, version: version)
                progressed += try await postgres.query("""
                    UPDATE \(versionsTable) SET key_id = \(new.keyID), wrapped_key = \(PostgresBytes(new.wrappedKey))
                    WHERE path = \(path) AND version = \(version) AND key_id = \(old.keyID) RETURNING version
                    """).count
            }
            total += progressed
            if progressed == 0 { return total }
        }
    }
}

/// Secrets in memory (plaintext, never in production), for unit tests of the rules around the vault; it can be
/// told to fail writes, as an unavailable vault would.
actor InMemorySecretBackend: SecretBackend {
    private var versionsByPath: [String: [SecretVersion]] = [:]
    private var failingWrites = false

    func failWrites(_ failing: Bool) { failingWrites = failing }

    func write(path: String, data: [String: String], actor: SecretActor) async throws -> Int {
        if failingWrites { throw VaultError.configuration("writes are failing") }
        let version = (versionsByPath[path]?.last?.version ?? 0) + 1
        versionsByPath[path, default: []].append(SecretVersion(path: path, version: version, data: data, createdAt: Date()))
        return version
    }

    func read(path: String, version: Int?, actor: SecretActor) async throws -> SecretVersion? {
        guard let versions = versionsByPath[path] else { return nil }
        return version.map { wanted in versions.first { $0.version == wanted } } ?? versions.last
    }

    func delete(path: String, actor: SecretActor) async throws -> Bool { versionsByPath.removeValue(forKey: path) != nil }

    func versions(path: String) async throws -> [Int] { versionsByPath[path]?.map(\.version) ?? [] }
}
