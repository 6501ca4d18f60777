/// A failure reported by PostgreSQL or libpq, with a stable `code`.
///
/// `description` names the code, the SQLSTATE and the objects involved (constraint, table, column) but never
/// the server's message text, which can quote parameter values, and never connection secrets.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// Stable classification of the failure, independent of server wording.
    public enum Code: String, Sendable {
        case uniqueViolation = "unique_violation"
        case foreignKeyViolation = "foreign_key_violation"
        case notNullViolation = "not_null_violation"
        case checkViolation = "check_violation"
        case exclusionViolation = "exclusion_violation"
        case undefinedTable = "undefined_table"
        case undefinedColumn = "undefined_column"
        case undefinedObject = "undefined_object"
        case duplicateObject = "duplicate_object"
        case syntaxError = "syntax_error"
        case invalidInput = "invalid_input"
        case insufficientPrivilege = "insufficient_privilege"
        case serializationFailure = "serialization_failure"
        case deadlockDetected = "deadlock_detected"
        case queryCanceled = "query_canceled"
        case authenticationFailed = "authentication_failed"
        case invalidDatabase = "invalid_database"
        case connectionFailure = "connection_failure"
        case adminShutdown = "admin_shutdown"
        case poolTimeout = "pool_timeout"
        case poolClosed = "pool_closed"
        case protocolViolation = "protocol_violation"
        case decodingFailed = "decoding_failed"
        case other = "other"
    }

    /// The classification.
    public var code: Code
    /// The five-character SQLSTATE, when the server sent one.
    public var sqlState: String?
    /// The constraint involved, for integrity violations.
    public var constraint: String?
    /// The table involved, when the server names one.
    public var table: String?
    /// The column involved, when the server names one.
    public var column: String?
    /// A safe, fixed explanation written by this wrapper (never server text with values).
    public var reason: String?
    /// The server's or libpq's own message. It can quote values of the statement: never log or return it.
    public var serverMessage: String?

    /// Creates an error.
    public init(
        code: Code, sqlState: String? = nil, constraint: String? = nil, table: String? = nil, column: String? = nil,
        reason: String? = nil, serverMessage: String? = nil
    ) {
        self.code = code
        self.sqlState = sqlState
        self.constraint = constraint
        self.table = table
        self.column = column
        self.reason = reason
        self.serverMessage = serverMessage
    }

    public var description: String {
        var parts = ["code: \(code.rawValue)"]
        if let sqlState { parts.append("sqlstate: \(sqlState)") }
        if let constraint { parts.append("constraint: \(constraint)") }
        if let table { parts.append("table: \(table)") }
        if let column { parts.append("column: \(column)") }
        if let reason { parts.append("reason: \(reason)") }
        return "PostgresError(\(parts.joined(separator: ", ")))"
    }

    /// True when the connection that produced this error cannot be trusted any more.
    public var isConnectionLevel: Bool {
        switch code {
        case .connectionFailure, .adminShutdown, .protocolViolation, .authenticationFailed, .invalidDatabase: true
        default: false
        }
    }

    /// Maps a SQLSTATE to its stable code.
    public static func code(forSQLState state: String) -> Code {
        switch state {
        case "23505": return .uniqueViolation
        case "23503": return .foreignKeyViolation
        case "23502": return .notNullViolation
        case "23514": return .checkViolation
        case "23P01": return .exclusionViolation
        case "42P01": return .undefinedTable
        case "42703": return .undefinedColumn
        case "42704": return .undefinedObject
        case "42P06", "42P07", "42710": return .duplicateObject
        case "42601": return .syntaxError
        case "42501": return .insufficientPrivilege
        case "40001": return .serializationFailure
        case "40P01": return .deadlockDetected
        case "57014": return .queryCanceled
        case "28P01", "28000": return .authenticationFailed
        case "3D000": return .invalidDatabase
        case "57P01", "57P02", "57P03": return .adminShutdown
        case "08P01": return .protocolViolation
        default: break
        }
        if state.hasPrefix("22") { return .invalidInput }
        if state.hasPrefix("08") { return .connectionFailure }
        return .other
    }

    /// Classifies a libpq connection-time failure, which carries no SQLSTATE, by libpq's fixed wording.
    public static func connectionFailure(libpqMessage message: String) -> PostgresError {
        let lowered = message.lowercased()
        let code: Code
        let reason: String
        if lowered.contains("password authentication failed") || lowered.contains("no password supplied")
            || lowered.contains("authentication failed")
        {
            (code, reason) = (.authenticationFailed, "the server rejected the credentials")
        } else if lowered.contains("database") && lowered.contains("does not exist") {
            (code, reason) = (.invalidDatabase, "the database does not exist")
        } else if lowered.contains("timeout expired") {
            (code, reason) = (.connectionFailure, "connect timed out")
        } else if lowered.contains("connection refused") {
            (code, reason) = (.connectionFailure, "connection refused")
        } else if lowered.contains("could not translate host name") {
            (code, reason) = (.connectionFailure, "unknown host")
        } else if lowered.contains("the database system is starting up")
            || lowered.contains("the database system is shutting down")
        {
            (code, reason) = (.connectionFailure, "the server is starting up or shutting down")
        } else {
            (code, reason) = (.connectionFailure, "could not connect")
        }
        return PostgresError(code: code, reason: reason, serverMessage: message)
    }
}
