import Foundation
import Logging
import Platform
import Synchronization

/// Secrets in HashiCorp Vault's KV version 2 engine, over its HTTP API (libcurl).
///
/// A platform path is a Vault path as the `vault kv` command writes it: the first segment is the engine's mount,
/// the rest the key, so `secret/database/connections/sales` is key `database/connections/sales` of the mount
/// `secret` (`/v1/secret/data/...`, `/v1/secret/metadata/...`). Vault keeps the versions; a new key gets
/// `max_versions` set to the platform's retention. Encryption at rest and key rotation are Vault's own.
struct HashiCorpVaultBackend: SecretBackend {
    /// Where Vault is and how to authenticate to it.
    struct Settings: Sendable, CustomStringConvertible {
        /// `VAULT_ADDR`, e.g. `https://vault.internal:8200`.
        var address: String
        /// Where the token comes from (sent as `X-Vault-Token`, never logged).
        var token: VaultToken
        /// `VAULT_NAMESPACE` (Vault Enterprise), sent as `X-Vault-Namespace` when set.
        var namespace: String?
        /// Versions Vault keeps per key.
        var retainedVersions: Int
        /// Only paths under this prefix are used (`vault.path_prefix`), so a connection can never name, and
        /// overwrite or delete, another secret the platform's token reaches.
        var pathPrefix: String

        var description: String { "HashiCorp Vault at \(address)" + (namespace.map { " (namespace \($0))" } ?? "") }
    }

    let settings: Settings
    let client: CurlHTTPClient
    let logger: Logger

    func write(path: String, data: [String: String], actor: SecretActor) async throws -> Int {
        let location = try Location(path, prefix: settings.pathPrefix)
        let response = try await send("POST", location.url(settings.address, "data"), body: ["data": data])
        guard response.status == 200 else { throw unexpected(response) }
        let version = try decode(WriteResponse.self, response).data.version
        if version == 1 {
            // Retention is a property of the key in Vault; set it when the key is born. A policy that allows
            // writing data but not metadata leaves Vault's own default, which is no reason to fail the write.
            let configured = try await send("POST", location.url(settings.address, "metadata"), body: ["max_versions": settings.retainedVersions])
            if configured.status != 204 && configured.status != 200 {
                logger.warning("could not set max_versions on a new Vault key", metadata: ["path": "\(path)", "error": "\(unexpected(configured))"])
            }
        }
        return version
    }

    func read(path: String, version: Int?, actor: SecretActor) async throws -> SecretVersion? {
        let location = try Location(path, prefix: settings.pathPrefix)
        let query = version.map { "?version=\($0)" } ?? ""
        let response = try await send("GET", location.url(settings.address, "data") + query)
        // No such key, no such version, or a version that was deleted or destroyed.
        if isAbsent(response) { return nil }
        guard response.status == 200 else { throw unexpected(response) }
        let body = try decode(ReadResponse.self, response).data
        guard let data = body.data else { return nil }
        return SecretVersion(path: path, version: body.metadata.version, data: data, createdAt: body.metadata.createdTime)
    }

    func delete(path: String, actor: SecretActor) async throws -> Bool {
        let location = try Location(path, prefix: settings.pathPrefix)
        // Vault answers 204 to deleting a key that never existed; the metadata says whether it did.
        let existing = try await send("GET", location.url(settings.address, "metadata"))
        if isAbsent(existing) { return false }
        guard existing.status == 200 else { throw unexpected(existing) }
        let response = try await send("DELETE", location.url(settings.address, "metadata"))
        guard response.status == 204 || response.status == 200 else { throw unexpected(response) }
        return true
    }

    func versions(path: String) async throws -> [Int] {
        let location = try Location(path, prefix: settings.pathPrefix)
        let response = try await send("GET", location.url(settings.address, "metadata"))
        if isAbsent(response) { return [] }
        guard response.status == 200 else { throw unexpected(response) }
        return try decode(MetadataResponse.self, response).data.versions
            .filter { !$0.value.destroyed && ($0.value.deletionTime ?? "").isEmpty }
            .compactMap { Int($0.key) }.sorted()
    }

    /// A 404 means "nothing there" only with no error message (or with a deleted version's metadata); a 404
    /// with a message, such as `no handler for route` for a mount that does not exist, is a misconfiguration.
    private func isAbsent(_ response: TransferResponse) -> Bool {
        guard response.status == 404 else { return false }
        let body = try? JSONDecoder().decode(ErrorResponse.self, from: Data(response.body))
        return (body?.errors ?? []).isEmpty
    }

    private func send(_ method: String, _ url: String, body: (some Encodable)? = Optional<[String: String]>.none) async throws -> TransferResponse {
        var bytes: [UInt8]?
        if let body { bytes = Array(try JSONEncoder().encode(body)) }
        let response = try await send(method, url, bytes: bytes, token: try settings.token.current())
        // A token from a file (Vault Agent's sink) may have been renewed since it was read: read it once more.
        guard response.status == 403, let renewed = try settings.token.reloaded() else { return response }
        return try await send(method, url, bytes: bytes, token: renewed)
    }

    private func send(_ method: String, _ url: String, bytes: [UInt8]?, token: String) async throws -> TransferResponse {
        var headers: [(name: String, value: String)] = [("X-Vault-Token", token), ("Accept", "application/json")]
        if let namespace = settings.namespace { headers.append(("X-Vault-Namespace", namespace)) }
        if bytes != nil { headers.append(("Content-Type", "application/json")) }
        do {
            return try await client.execute(TransferRequest(method: method, url: url, headers: headers, body: bytes))
        } catch let error as TransferError {
            throw VaultError.unavailable("\(settings) did not answer: \(error.message)")
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ response: TransferResponse) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = VaultTime.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an RFC 3339 time"))
            }
            return date
        }
        do {
            return try decoder.decode(type, from: Data(response.body))
        } catch {
            throw VaultError.unavailable("HashiCorp Vault sent an answer that is not KV version 2 (\(response.status))")
        }
    }

    /// Vault's `{"errors": [...]}` messages name paths and policies, never secret values; they are kept for the log.
    private func unexpected(_ response: TransferResponse) -> VaultError {
        let messages = (try? JSONDecoder().decode(ErrorResponse.self, from: Data(response.body)))?.errors ?? []
        let reason = "HashiCorp Vault answered \(response.status)" + (messages.isEmpty ? "" : ": " + messages.joined(separator: "; "))
        return VaultError.unavailable(reason)
    }

    /// A platform path split into the engine's mount and the key within it.
    private struct Location {
        let mount: String
        let key: String

        init(_ path: String, prefix: String) throws {
            guard path.hasPrefix(prefix) else { throw VaultError.pathNotAllowed(prefix: prefix) }
            let segments = path.split(separator: "/")
            guard segments.count >= 2 else { throw VaultError.configuration("path \(path) has no key under its mount") }
            let encode = { (segment: Substring) in segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? "" }
            self.mount = encode(segments[0])
            self.key = segments.dropFirst().map(encode).joined(separator: "/")
        }

        func url(_ address: String, _ kind: String) -> String {
            "\(address.hasSuffix("/") ? String(address.dropLast()) : address)/v1/\(mount)/\(kind)/\(key)"
        }
    }

    private struct WriteResponse: Decodable {
        struct Data: Decodable { var version: Int }
        var data: Data
    }

    private struct VersionMetadata: Decodable {
        var version: Int
        var createdTime: Date
    }

    private struct ReadResponse: Decodable {
        struct Body: Decodable {
            var data: [String: String]?
            var metadata: VersionMetadata
        }
        var data: Body
    }

    private struct MetadataResponse: Decodable {
        struct Version: Decodable {
            var destroyed: Bool
            var deletionTime: String?
        }
        struct Body: Decodable { var versions: [String: Version] }
        var data: Body
    }

    private struct ErrorResponse: Decodable { var errors: [String] }
}

/// Vault writes times as RFC 3339 with up to nanosecond fractions (`2026-11-23T10:15:04.123456789Z`).
enum VaultTime {
    static func parse(_ text: String) -> Date? {
        let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        if let date = try? withFraction.parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        // More than the millisecond digits the format style reads: keep the first three.
        guard let dot = text.firstIndex(of: "."), let end = text[dot...].firstIndex(where: { !$0.isNumber && $0 != "." }) else { return nil }
        let fraction = text[text.index(after: dot)..<end].prefix(3)
        return try? withFraction.parse(String(text[..<dot]) + "." + fraction + text[end...])
    }
}

/// The Vault token: given inline (`VAULT_TOKEN`), or in a file (`VAULT_TOKEN_FILE`) that an agent may rewrite
/// when it renews the token, so it is read again when Vault refuses the one at hand.
final class VaultToken: Sendable, CustomStringConvertible {
    private let file: String?
    private let token: Mutex<String>

    /// A token that never changes.
    init(inline token: String) {
        self.file = nil
        self.token = Mutex(token)
    }

    /// A token read from a file now and again after each refusal.
    init(file: String) throws {
        self.file = file
        self.token = Mutex(try Self.read(file))
    }

    func current() throws -> String { token.withLock { $0 } }

    /// The file's token when it differs from the one at hand; `nil` for an inline token or an unchanged file.
    func reloaded() throws -> String? {
        guard let file else { return nil }
        let fresh = try Self.read(file)
        return token.withLock { current in
            guard fresh != current else { return nil }
            current = fresh
            return fresh
        }
    }

    var description: String { file.map { "token from \($0)" } ?? "inline token" }

    private static func read(_ file: String) throws -> String {
        let text = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw VaultError.configuration("\(file) holds no Vault token") }
        return text
    }
}
