import Foundation
import Platform
import SharedModels

/// A `log_analysis` job: the slowest and the most frequent statements from `pg_stat_statements` when the database
/// has it, and always the sessions that run long or wait on another's lock (`pg_stat_activity`), with notes saying
/// what could not be read. Statement texts keep no string literals (``StatementText``).
struct LogAnalysis: RunWork {
    let databases: CustomerDatabases
    /// Statements listed per ranking.
    var statementLimit = 20

    /// A statement as `pg_stat_statements` aggregates it.
    struct Statement: Encodable {
        var query: String
        var calls: Int64
        var totalMS: Double
        var meanMS: Double
        var rows: Int64
    }

    /// A session of `pg_stat_activity`.
    struct Session: Encodable {
        var pid: Int64
        var user: String?
        var applicationName: String?
        var state: String?
        var runningSeconds: Double?
        var waitEvent: String?
        /// The sessions holding the locks this one waits for.
        var blockedBy: [Int64]
        var query: String?
    }

    /// What the job found.
    struct Result: Encodable {
        var statementStatistics: Bool
        var slowestStatements: [Statement]
        var mostFrequentStatements: [Statement]
        var longRunningSessions: [Session]
        var blockedSessions: [Session]
        var notes: [String]
    }

    func perform(_ run: Run, progress: LoadProgress) async throws -> RunOutcome {
        let minimumSeconds: Double = switch run.parameters["min_duration_seconds"] {
        case .number(let seconds)?: min(max(seconds, 0), 86_400)
        default: 5
        }
        let started = ContinuousClock.now
        let result = try await databases.inspect(run, statementTimeout: .seconds(60)) { connection in
            var result = Result(statementStatistics: false, slowestStatements: [], mostFrequentStatements: [], longRunningSessions: [],
                                blockedSessions: [], notes: [])
            let installed = try await connection.query("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS found")
                .first!.decode("found", as: Bool.self)
            if installed {
                // The view fails when the library is not preloaded; the savepoint keeps the transaction usable.
                try await connection.query("SAVEPOINT statements")
                do {
                    result.slowestStatements = try await statements(orderedBy: "total", on: connection)
                    result.mostFrequentStatements = try await statements(orderedBy: "calls", on: connection)
                    result.statementStatistics = true
                } catch let error as PostgresError {
                    try await connection.query("ROLLBACK TO SAVEPOINT statements")
                    result.notes.append("pg_stat_statements is installed but cannot be read (\(CustomerDatabases.message(for: error))): "
                                        + "it must be in shared_preload_libraries, and the connection's role needs pg_read_all_stats")
                }
            } else {
                result.notes.append("""
                    pg_stat_statements is not installed in this database, so the slowest and most frequent statements cannot be \
                    listed: add it to shared_preload_libraries and run CREATE EXTENSION pg_stat_statements; until then only \
                    long-running and blocked sessions are shown
                    """)
            }
            let sessions = try await sessions(runningLongerThan: minimumSeconds, on: connection)
            result.longRunningSessions = sessions.filter { ($0.runningSeconds ?? 0) >= minimumSeconds }
            result.blockedSessions = sessions.filter { !$0.blockedBy.isEmpty }
            if sessions.contains(where: { $0.query == "<insufficient privilege>" }) {
                result.notes.append("the texts of other roles' statements are hidden from the connection's role: grant it pg_read_all_stats to see them")
            }
            return result
        }
        return RunOutcome(status: .success,
                          rowsProcessed: Int64(result.slowestStatements.count + result.longRunningSessions.count + result.blockedSessions.count),
                          metrics: RunMetrics(extractionMS: RunExecutor.milliseconds(started.duration(to: .now))),
                          result: try JSONValue(encoding: result))
    }

    /// The top statements of this database by total time (`total`) or by calls (`calls`).
    private func statements(orderedBy order: String, on connection: PostgresConnection) async throws -> [Statement] {
        // PostgreSQL 13 split the time columns into planning and execution.
        let (total, mean) = connection.serverVersion >= 130_000 ? ("total_exec_time", "mean_exec_time") : ("total_time", "mean_time")
        let orderBy = order == "calls" ? "calls" : total
        return try await connection.query(PostgresQuery(unsafeSQL: """
            SELECT query, calls, \(total)::float8 AS total_ms, \(mean)::float8 AS mean_ms, rows
            FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY \(orderBy) DESC LIMIT \(statementLimit)
            """)).map { row in
            Statement(query: StatementText.redacted(try row.decode("query", as: String?.self) ?? ""), calls: try row.decode("calls"),
                      totalMS: try row.decode("total_ms"), meanMS: try row.decode("mean_ms"), rows: try row.decode("rows"))
        }
    }

    /// The database's other sessions that are busy for at least `seconds`, or wait on a lock.
    private func sessions(runningLongerThan seconds: Double, on connection: PostgresConnection) async throws -> [Session] {
        try await connection.query(PostgresQuery(unsafeSQL: """
            SELECT pid, usename::text AS user_name, application_name, state,
                extract(epoch FROM clock_timestamp() - coalesce(xact_start, query_start))::float8 AS running_seconds,
                wait_event_type || ':' || wait_event AS wait_event, pg_blocking_pids(pid)::text[] AS blocked_by, query
            FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
              AND state IS DISTINCT FROM 'idle'
              AND (clock_timestamp() - coalesce(xact_start, query_start) >= make_interval(secs => $1::float8)
                   OR cardinality(pg_blocking_pids(pid)) > 0)
            ORDER BY running_seconds DESC NULLS LAST LIMIT 100
            """, binds: [String(seconds)])).map { row in
            Session(pid: try row.decode("pid"), user: try row.decode("user_name"), applicationName: try row.decode("application_name"),
                    state: try row.decode("state"), runningSeconds: try row.decode("running_seconds"),
                    waitEvent: try row.decode("wait_event"),
                    blockedBy: try row.decode("blocked_by", as: [String].self).compactMap { Int64($0) },
                    query: try row.decode("query", as: String?.self).map { $0 == "<insufficient privilege>" ? $0 : StatementText.redacted($0) })
        }
    }
}
