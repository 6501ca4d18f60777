/// The answer of connections-vault's `GET /internal/connections/{id}/credentials`: what a service needs to reach a
/// customer's database, read from the vault for this one use. Services keep it no longer than the work it is for.
public struct InternalConnectionCredentials: Codable, Sendable, Equatable, CustomStringConvertible {
    public var connectionID: Int64
    public var name: String
    public var environment: String
    public var vaultPath: String
    /// The vault version the credentials were read from.
    public var secretVersion: Int
    public var host: String
    public var port: Int
    public var database: String
    public var username: String
    public var password: String
    public var sslmode: String

    public init(connectionID: Int64, name: String, environment: String, vaultPath: String, secretVersion: Int,
                host: String, port: Int, database: String, username: String, password: String, sslmode: String) {
        self.connectionID = connectionID
        self.name = name
        self.environment = environment
        self.vaultPath = vaultPath
        self.secretVersion = secretVersion
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.sslmode = sslmode
    }

    enum CodingKeys: String, CodingKey {
        case connectionID = "connection_id"
        case name, environment
        case vaultPath = "vault_path"
        case secretVersion = "secret_version"
        case host, port, database, username, password, sslmode
    }

    /// Never the password, should the value end up in a log line.
    public var description: String {
        "connection \(connectionID) \(username)@\(host):\(port)/\(database) (vault \(vaultPath) v\(secretVersion), password redacted)"
    }
}
