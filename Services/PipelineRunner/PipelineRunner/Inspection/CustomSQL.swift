import Foundation
import Platform
import SharedModels

/// A `custom_sql` job: one statement (`parameters.sql`) on the connection's database, in a read-only transaction
/// unless the task says `read_only: false`, bounded by a statement timeout. The run keeps the first 1,000 rows and
/// the number of rows there were. Tasks are written only by engineers and above (the gateway's rule for
/// `/api/v1/scheduler/**`), so a task asking for write access was written by one.
struct CustomSQL: RunWork {
    let databases: CustomerDatabases
    /// Rows kept with the run.
    var rowLimit = 1_000

    /// What the job found: the statement's columns, its first rows and their count.
    struct Result: Encodable {
        struct Column: Encodable {
            var name: String
            var type: String
        }

        var command: String
        var readOnly: Bool
        var columns: [Column]
        var rows: [[JSONValue]]
        /// Rows the statement returned (or changed), all of them.
        var rowCount: Int64
        /// Whether `rows` holds fewer than `rowCount`.
        var truncated: Bool
    }

    func perform(_ run: Run, progress: LoadProgress) async throws -> RunOutcome {
        guard case .string(let sql)? = run.parameters["sql"], !sql.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw RunFailure(.validationError, "parameters.sql: is required for custom_sql jobs")
        }
        let readOnly = run.parameters["read_only"] != .bool(false)
        let timeout: Duration = switch run.parameters["timeout_seconds"] {
        case .number(let seconds)?: .seconds(Int64(min(max(seconds, 1), 3_600)))
        default: .seconds(300)
        }
        let started = ContinuousClock.now
        let found = try await databases.inspect(run, readOnly: readOnly, statementTimeout: timeout) { connection in
            // The statement goes alone through the extended protocol, which refuses a second one in the same text:
            // `COMMIT; DROP ...` cannot leave the read-only transaction.
            if Self.returnsRows(sql) {
                // Through a cursor, so a statement that returns millions of rows keeps 1,000 in memory and counts the rest.
                try await connection.query(PostgresQuery(unsafeSQL: "DECLARE platform_custom_sql NO SCROLL CURSOR FOR \(sql)"))
                let first = try await connection.query(PostgresQuery(unsafeSQL: "FETCH \(rowLimit) FROM platform_custom_sql"))
                // The statement itself may have lifted the timeout (set_config in its select list): set it again.
                try await connection.limitStatements(to: timeout)
                let rest = first.count < rowLimit ? 0 : try await connection.query("MOVE FORWARD ALL IN platform_custom_sql").affectedRows
                return try await result(of: first, command: "SELECT", count: Int64(first.count + rest), readOnly: readOnly, on: connection)
            }
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql))
            let command = sql.trimmingCharacters(in: .whitespacesAndNewlines).prefix { $0.isLetter }.uppercased()
            return try await result(of: rows, command: command, count: Int64(rows.columns.isEmpty ? rows.affectedRows : rows.count),
                                    readOnly: readOnly, on: connection)
        }
        return RunOutcome(status: .success, rowsProcessed: found.rowCount,
                          metrics: RunMetrics(extractionMS: RunExecutor.milliseconds(started.duration(to: .now))),
                          result: try JSONValue(encoding: found))
    }

    private func result(of rows: PostgresRows, command: String, count: Int64, readOnly: Bool,
                        on connection: PostgresConnection) async throws -> Result {
        let types = try await connection.typeNames(of: rows)
        let kept = rows.prefix(rowLimit).map { row in
            rows.columnTypes.indices.map { column in
                JSONValue(postgresText: try? row.decode(at: column, as: String?.self), type: rows.columnTypes[column].oid)
            }
        }
        return Result(command: command, readOnly: readOnly, columns: zip(rows.columns, types).map { Result.Column(name: $0, type: $1) },
                      rows: kept, rowCount: count, truncated: Int64(kept.count) < count)
    }

    /// Whether `sql` is a query a cursor can hold (`SELECT`, `WITH`, `VALUES`, `TABLE`), after leading comments.
    static func returnsRows(_ sql: String) -> Bool {
        var text = Substring(sql)
        while true {
            text = text.drop { $0.isWhitespace || $0 == "(" }
            if text.hasPrefix("--") {
                text = text.drop { $0 != "\n" }
            } else if text.hasPrefix("/*"), let end = text.range(of: "*/") {
                text = text[end.upperBound...]
            } else {
                break
            }
        }
        let word = text.prefix { $0.isLetter }.lowercased()
        return ["select", "with", "values", "table"].contains(word)
    }
}
