import Foundation
import Platform

/// A connection's metadata as stored (the credentials are in the vault at `vaultPath`).
struct Connection: Sendable, Equatable {
    var id: Int64
    var name: String
    var vaultPath: String
    var environment: String
    var description: String
    var tags: [String]
    var isActive: Bool
    var createdAt: Date
    var updatedAt: Date
    /// When the latest test ran, and its `test_status`.
    var lastTestedAt: Date? = nil
    var lastTestStatus: String? = nil
}

/// The metadata fields of a new connection.
struct NewConnection: Sendable, Equatable {
    var name: String
    var vaultPath: String
    var environment: String
    var description: String
    var tags: [String]
    var isActive: Bool
    var createdBy: String?
}

/// Metadata changes; `nil` keeps a field.
struct ConnectionChanges: Sendable, Equatable {
    var name: String?
    var environment: String?
    var description: String?
    var tags: [String]?
    var isActive: Bool?
}

/// The credential fields kept in the vault.
struct ConnectionCredentials: Sendable, Equatable, CustomStringConvertible {
    var host: String
    var port: Int
    var database: String
    var username: String
    var password: String
    var sslMode: String

    /// Never the password, should the value end up in a log line.
    var description: String { "\(username)@\(host):\(port)/\(database) (password redacted)" }

    /// The vault entry.
    var secretData: [String: String] {
        ["host": host, "port": String(port), "database": database, "username": username, "password": password, "sslmode": sslMode]
    }

    /// How libpq reaches the database with these credentials.
    func configuration(connectTimeoutSeconds: Int, applicationName: String) -> PostgresConfiguration {
        PostgresConfiguration(host: host, port: port, username: username, password: password, database: database,
                              sslMode: sslMode, connectTimeoutSeconds: connectTimeoutSeconds, applicationName: applicationName)
    }

    /// From a vault entry.
    init?(secretData data: [String: String]) {
        guard let host = data["host"], let port = data["port"].flatMap(Int.init), let database = data["database"],
              let username = data["username"], let password = data["password"] else { return nil }
        self.init(host: host, port: port, database: database, username: username, password: password, sslMode: data["sslmode"] ?? "prefer")
    }

    init(host: String, port: Int, database: String, username: String, password: String, sslMode: String) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.sslMode = sslMode
    }
}

/// Body of `POST /connections` (`001-connections-api.md`): metadata plus the credentials for the vault.
struct CreateConnectionRequest: Decodable, Sendable {
    var name: String
    var vaultPath: String?
    var environment: String?
    var description: String?
    var tags: [String]?
    var isActive: Bool?
    var host: String
    var port: Int?
    var database: String
    var username: String
    var password: String
    var sslmode: String?

    enum CodingKeys: String, CodingKey {
        case name, environment, description, tags, host, port, database, username, password, sslmode
        case vaultPath = "vault_path"
        case isActive = "is_active"
    }
}

/// Body of `PUT /connections/{id}`: every field optional; credential fields update the vault entry.
struct UpdateConnectionRequest: Decodable, Sendable {
    var name: String?
    var environment: String?
    var description: String?
    var tags: [String]?
    var isActive: Bool?
    var host: String?
    var port: Int?
    var database: String?
    var username: String?
    var password: String?
    var sslmode: String?

    enum CodingKeys: String, CodingKey {
        case name, environment, description, tags, host, port, database, username, password, sslmode
        case isActive = "is_active"
    }

    /// Whether any credential field is present.
    var changesCredentials: Bool {
        host != nil || port != nil || database != nil || username != nil || password != nil || sslmode != nil
    }
}

/// A connection as the API shows it: metadata only (credentials are not even in the type).
extension Connection: Encodable {
    enum CodingKeys: String, CodingKey {
        case id, name, environment, description, tags
        case vaultPath = "vault_path"
        case isActive = "is_active"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// Validation of connection fields; each failure is a 422 naming the field.
enum ConnectionRules {
    static let environments = ["production", "staging", "development"]
    static let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    static func validate(name: String) throws {
        guard TextRules.isName(name) else {
            throw APIError.validation(field: "name", reason: "must be 1 to 200 characters without control characters")
        }
    }

    static func validate(environment: String) throws {
        guard environments.contains(environment) else {
            throw APIError.validation(field: "environment", reason: "must be one of production, staging, development")
        }
    }

    static func validate(tags: [String]) throws {
        guard tags.count <= 20, tags.allSatisfy({ (1...50).contains($0.count) && !containsControl($0) }) else {
            throw APIError.validation(field: "tags", reason: "at most 20 tags of 1 to 50 characters")
        }
    }

    static func validate(description: String) throws {
        guard description.count <= 2000, !description.unicodeScalars.contains(where: { $0 == "\u{0}" }) else {
            throw APIError.validation(field: "description", reason: "must be at most 2000 characters")
        }
    }

    /// `secret/...`: segments of letters, digits, `-`, `_`, `.`; at most 200 characters.
    static func validate(vaultPath: String) throws {
        let segments = vaultPath.split(separator: "/", omittingEmptySubsequences: false)
        guard vaultPath.count <= 200, segments.count >= 2, segments.allSatisfy({ segment in
            !segment.isEmpty && segment != "." && segment != ".."
                && segment.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
        }) else {
            throw APIError.validation(field: "vault_path", reason: "must be segments of letters, digits, '-', '_', '.' separated by '/'")
        }
    }

    static func validate(_ credentials: ConnectionCredentials) throws {
        guard !credentials.host.isEmpty, credentials.host.count <= 255, !containsControl(credentials.host), !credentials.host.contains(" ") else {
            throw APIError.validation(field: "host", reason: "must be a host name or address")
        }
        guard (1...65535).contains(credentials.port) else { throw APIError.validation(field: "port", reason: "must be from 1 to 65535") }
        guard !credentials.database.isEmpty, credentials.database.count <= 63, !containsControl(credentials.database) else {
            throw APIError.validation(field: "database", reason: "must be 1 to 63 characters")
        }
        guard !credentials.username.isEmpty, credentials.username.count <= 63, !containsControl(credentials.username) else {
            throw APIError.validation(field: "username", reason: "must be 1 to 63 characters")
        }
        guard !credentials.password.unicodeScalars.contains("\u{0}"), credentials.password.count <= 1024 else {
            throw APIError.validation(field: "password", reason: "must be at most 1024 characters without NUL")
        }
        guard sslModes.contains(credentials.sslMode) else {
            throw APIError.validation(field: "sslmode", reason: "must be one of " + sslModes.joined(separator: ", "))
        }
    }

    /// `secret/database/connections/<slug>` for a name: lowercase letters and digits, other runs become `-`.
    static func defaultVaultPath(for name: String) -> String {
        var slug = ""
        for character in name.lowercased() {
            if character.isASCII, character.isLetter || character.isNumber {
                slug.append(character)
            } else if !slug.hasSuffix("-") {
                slug.append("-")
            }
        }
        slug = String(slug.trimmingCharacters(in: CharacterSet(charactersIn: "-")).prefix(100))
        return "secret/database/connections/" + (slug.isEmpty ? "connection" : slug)
    }

    private static func containsControl(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
