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

/// The body of connections-vault's `POST /internal/connections/match`: a database that a pipeline specification
/// names inline (`{host, port, database}`), to be turned into the connection that reaches it.
public struct InternalConnectionMatchRequest: Codable, Sendable, Equatable {
    /// Compared without regard to case.
    public var host: String
    /// 5432 when absent.
    public var port: Int?
    /// Compared exactly.
    public var database: String

    public init(host: String, port: Int? = nil, database: String) {
        self.host = host
        self.port = port
        self.database = database
    }
}

/// The answer of `POST /internal/connections/match`: the active connections whose latest credentials name that
/// host, port and database, in id order. A caller binds a specification to a connection only when there is
/// exactly one.
public struct InternalConnectionMatchResponse: Codable, Sendable, Equatable {
    public var connectionIDs: [Int64]

    public init(connectionIDs: [Int64]) {
        self.connectionIDs = connectionIDs
    }

    enum CodingKeys: String, CodingKey {
        case connectionIDs = "connection_ids"
    }
}

/// The structure of one table of a connection's database: the answer of connections-vault's
/// `GET /internal/connections/{id}/schema/{table}`, and of the public `GET /api/v1/connections/{id}/schema/{table}`
/// (`002-platform-api.md`, "Получение схемы таблицы").
public struct InternalTableSchema: Codable, Sendable, Equatable {
    /// A column, in the table's order.
    public struct Column: Codable, Sendable, Equatable {
        public var name: String
        /// The type as PostgreSQL's `format_type` writes it (`character varying(40)`, `numeric(12,2)`).
        public var type: String
        public var nullable: Bool
        public var primaryKey: Bool
        /// The default expression, when the column has one.
        public var defaultValue: String?

        public init(name: String, type: String, nullable: Bool, primaryKey: Bool, defaultValue: String? = nil) {
            self.name = name
            self.type = type
            self.nullable = nullable
            self.primaryKey = primaryKey
            self.defaultValue = defaultValue
        }

        enum CodingKeys: String, CodingKey {
            case name, type, nullable
            case primaryKey = "primary_key"
            case defaultValue = "default"
        }
    }

    /// An index, with its columns in key order.
    public struct Index: Codable, Sendable, Equatable {
        public var name: String
        public var columns: [String]
        public var unique: Bool

        public init(name: String, columns: [String], unique: Bool) {
            self.name = name
            self.columns = columns
            self.unique = unique
        }
    }

    public var schema: String
    public var tableName: String
    public var columns: [Column]
    /// Exact below 100,000 rows, the planner's estimate above. connections-vault always sends it (and the indexes);
    /// both are optional so that a reader that needs only the columns can be given only the columns.
    public var rowCount: Int64?
    public var indexes: [Index]?

    public init(schema: String, tableName: String, columns: [Column], rowCount: Int64? = nil, indexes: [Index]? = nil) {
        self.schema = schema
        self.tableName = tableName
        self.columns = columns
        self.rowCount = rowCount
        self.indexes = indexes
    }

    enum CodingKeys: String, CodingKey {
        case schema, columns, indexes
        case tableName = "table_name"
        case rowCount = "row_count"
    }
}
