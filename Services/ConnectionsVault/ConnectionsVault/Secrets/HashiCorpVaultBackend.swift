import Foundation
import Platform

/// Secrets in HashiCorp Vault's KV version 2 engine, over its HTTP API (libcurl).
///
/// A platform path is a Vault path as the `vault kv` command writes it: the first segment is the engine's mount,
/// the rest the key, so `secret/database/connections/sales` is key `database/connections/sales` of the mount
/// `secret` (`/v1/secret/data/...`, `/v1/secret/metadata/...`). Vault keeps the versions; a new key gets
/// `max_versions` set to the platform's retention. Encryption at rest and key rotation are Vault's own.
struct HashiCorpVaultBackend: SecretBackend {
    /// Where Vault is and how to authenticate to it.
    struct Settings: Sendable {
        /// `VAULT_ADDR`, e.g. `https://vault.internal:8200`.
        var address: String
        /// `VAULT_TOKEN`: sent as `X-Vault-Token`, never logged.
        var token: String
        /// `VAULT_NAMESPACE` (Vault Enterprise), sent as `X-Vault-Namespace` when set.
        var namespace: String?
        /// Versions Vault keeps per key.
        var retainedVersions: Int
    }

    let settings: Settings
    let client: CurlHTTPClient

    func write(path: String, data: [String: String], actor: SecretActor) async throws -> Int {
        let location = try Location(path)
        let response = try await send("POST", location.url(settings.address, "data"), body: ["data": data])
        guard response.status == 200 else { throw unexpected(response) }
        let version = try decode(WriteResponse.self, response).data.version
        if version == 1 {
            // Retention is a property of the key in Vault; set it when the key is born.
            let configured = try await send("POST", location.url(settings.address, "metadata"), body: ["max_versions": settings.retainedVersions])
            guard configured.status == 204 || configured.status == 200 else { throw unexpected(configured) }
        }
        return version
    }

    func read(path: String, version: Int?, actor: SecretActor) async throws -> SecretVersion? {
        let location = try Location(path)
        let query = version.map { "?version=\($0)" } ?? ""
        let response = try await send("GET", location.url(settings.address, "data") + query)
        // 404: no such key, no such version, or a version that was deleted or destroyed.
        if response.status == 404 { return nil }
        guard response.status == 200 else { throw unexpected(response) }
        let body = try decode(ReadResponse.self, response).data
        guard let data = body.data else { return nil }
        return SecretVersion(path: path, version: body.metadata.version, data: data, createdAt: body.metadata.createdTime)
    }

    func delete(path: String, actor: SecretActor) async throws -> Bool {
        let location = try Location(path)
        // Vault answers 204 to deleting a key that never existed; the metadata says whether it did.
        let existing = try await send("GET", location.url(settings.address, "metadata"))
        if existing.status == 404 { return false }
        guard existing.status == 200 else { throw unexpected(existing) }
        let response = try await send("DELETE", location.url(settings.address, "metadata"))
        guard response.status == 204 || response.status == 200 else { throw unexpected(response) }
        return true
    }

    func versions(path: String) async throws -> [Int] {
        let location = try Location(path)
        let response = try await send("GET", location.url(settings.address, "metadata"))
        if response.status == 404 { return [] }
        guard response.status == 200 else { throw unexpected(response) }
        return try decode(MetadataResponse.self, response).data.versions
            .filter { !$0.value.destroyed && ($0.value.deletionTime ?? "").isEmpty }
            .compactMap { Int($0.key) }.sorted()
    }

    private func send(_ method: String, _ url: String, body: (some Encodable)? = Optional<[String: String]>.none) async throws -> TransferResponse {
        var headers: [(name: String, value: String)] = [("X-Vault-Token", settings.token), ("Accept", "application/json")]
        if let namespace = settings.namespace { headers.append(("X-Vault-Namespace", namespace)) }
        var bytes: [UInt8]?
        if let body {
            headers.append(("Content-Type", "application/json"))
            bytes = Array(try JSONEncoder().encode(body))
        }
        do {
            return try await client.execute(TransferRequest(method: method, url: url, headers: headers, body: bytes))
        } catch let error as TransferError {
            throw VaultError.unavailable("HashiCorp Vault at \(settings.address) did not answer: \(error.message)")
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

        init(_ path: String) throws {
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
