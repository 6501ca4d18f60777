import Foundation
import Platform
import SharedModels

/// A `table_analysis` job: for every table of the connection's database (or those in `parameters.tables`), its
/// size, estimated and (when small) exact row count, dead tuples, last vacuum and analyze, sequential against index
/// scans, unused indexes and unindexed foreign keys, each table with ``TableAdvice``'s recommendations.
struct TableAnalysis: RunWork {
    let databases: CustomerDatabases
    /// Tables estimated below this many rows are counted exactly.
    var exactCountBelow: Int64 = 100_000
    /// Tables analysed at most, largest first.
    var tableLimit = 500

    /// What the job found.
    struct Result: Encodable {
        var tables: [TableFacts]
        var tableCount: Int
        var totalBytes: Int64
        var recommendationCount: Int
        /// Tables asked for in `parameters.tables` that do not exist.
        var missing: [String]
        /// Small tables whose rows could not be counted, with the reason (the role may not read them, say).
        var uncounted: [String]
    }

    func perform(_ run: Run, progress: LoadProgress) async throws -> RunOutcome {
        let asked = try Self.tables(in: run.parameters)
        let started = ContinuousClock.now
        let result = try await databases.inspect(run, statementTimeout: .seconds(120)) { connection in
            var facts = try await tableFacts(asked, on: connection)
            var uncounted: [String] = []
            for index in facts.indices where facts[index].estimatedRows < exactCountBelow {
                let table = SQLTableName(schema: try SQLIdentifier(facts[index].schema), table: try SQLIdentifier(facts[index].name))
                // A table the connection's role may not read is left uncounted, not the whole analysis failed.
                try await connection.query("SAVEPOINT count_rows")
                do {
                    facts[index].exactRows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT count(*) AS rows FROM \(table.quoted)"))
                        .first?.decode("rows", as: Int64.self)
                    try await connection.query("RELEASE SAVEPOINT count_rows")
                } catch let error as PostgresError {
                    try await connection.query("ROLLBACK TO SAVEPOINT count_rows")
                    uncounted.append("\(table.displayName): \(CustomerDatabases.message(for: error))")
                }
                progress.add(rows: facts[index].exactRows ?? 0, bytes: 0)
            }
            try await attachIndexFindings(to: &facts, on: connection)
            for index in facts.indices { facts[index].recommendations = TableAdvice.recommendations(for: facts[index]) }
            let found = Set(facts.map { "\($0.schema).\($0.name)" })
            return Result(tables: facts, tableCount: facts.count, totalBytes: facts.reduce(0) { $0 + $1.totalBytes },
                          recommendationCount: facts.reduce(0) { $0 + $1.recommendations.count },
                          missing: asked.map(\.displayName).filter { !found.contains($0) }, uncounted: uncounted)
        }
        return RunOutcome(status: .success, rowsProcessed: Int64(result.tableCount),
                          metrics: RunMetrics(extractionMS: RunExecutor.milliseconds(started.duration(to: .now))),
                          result: try JSONValue(encoding: result))
    }

    /// The tables of `parameters.tables` (`schema.table` or `table`, folded as PostgreSQL folds names); empty for all.
    static func tables(in parameters: [String: JSONValue]) throws -> [SQLTableName] {
        guard let value = parameters["tables"], value != .null else { return [] }
        guard case .array(let items) = value, items.count <= 1_000 else {
            throw RunFailure(.validationError, "parameters.tables: must be a list of at most 1,000 table names")
        }
        return try items.enumerated().map { index, item in
            guard case .string(let text) = item, let table = try? SQLTableName(parsing: text) else {
                throw RunFailure(.validationError, "parameters.tables[\(index)]: must be a table name (schema.table or table)")
            }
            return table
        }
    }

    private func tableFacts(_ asked: [SQLTableName], on connection: PostgresConnection) async throws -> [TableFacts] {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: """
            SELECT n.nspname AS schema, c.relname AS name, pg_total_relation_size(c.oid) AS total_bytes,
                pg_relation_size(c.oid) AS table_bytes, pg_indexes_size(c.oid) AS index_bytes,
                CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE coalesce(s.n_live_tup, 0) END AS estimated_rows,
                coalesce(s.n_live_tup, 0) AS live, coalesce(s.n_dead_tup, 0) AS dead,
                coalesce(s.seq_scan, 0) AS seq_scan, coalesce(s.idx_scan, 0) AS idx_scan,
                s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
                EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS has_primary_key
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
              AND c.relname NOT LIKE '\\_platform\\_stage\\_%'
              AND (cardinality($1::text[]) = 0 OR (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[])))
            ORDER BY total_bytes DESC, n.nspname, c.relname LIMIT \(tableLimit)
            """, binds: [asked.map(\.schema.name), asked.map(\.table.name)]))
        return try rows.map { row in
            TableFacts(
                schema: try row.decode("schema"), name: try row.decode("name"), totalBytes: try row.decode("total_bytes"),
                tableBytes: try row.decode("table_bytes"), indexBytes: try row.decode("index_bytes"),
                estimatedRows: try row.decode("estimated_rows"), liveTuples: try row.decode("live"), deadTuples: try row.decode("dead"),
                sequentialScans: try row.decode("seq_scan"), indexScans: try row.decode("idx_scan"),
                lastVacuum: try row.decode("last_vacuum"), lastAutovacuum: try row.decode("last_autovacuum"),
                lastAnalyze: try row.decode("last_analyze"), lastAutoanalyze: try row.decode("last_autoanalyze"),
                hasPrimaryKey: try row.decode("has_primary_key"))
        }
    }

    /// Adds each table's unused indexes and its foreign keys that no index starts with.
    private func attachIndexFindings(to facts: inout [TableFacts], on connection: PostgresConnection) async throws {
        var position: [String: Int] = [:]
        for (index, table) in facts.enumerated() { position["\(table.schema).\(table.name)"] = index }
        let unused = try await connection.query("""
            SELECT s.schemaname AS schema, s.relname AS table_name, s.indexrelname AS name, pg_relation_size(s.indexrelid) AS bytes
            FROM pg_stat_all_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
            WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary AND s.schemaname NOT LIKE 'pg\\_%'
              AND s.schemaname <> 'information_schema'
            ORDER BY s.schemaname, s.relname, s.indexrelname
            """)
        for row in unused {
            guard let index = position["\(try row.decode("schema", as: String.self)).\(try row.decode("table_name", as: String.self))"] else { continue }
            facts[index].unusedIndexes.append(.init(name: try row.decode("name"), bytes: try row.decode("bytes")))
        }
        // An index serves a foreign key when its leading columns are exactly the key's columns, in any order.
        let keys = try await connection.query("""
            SELECT n.nspname AS schema, c.relname AS table_name, k.conname AS name,
                (SELECT array_agg(a.attname::text ORDER BY x.position) FROM unnest(k.conkey) WITH ORDINALITY AS x(attnum, position)
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.attnum) AS columns
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE k.contype = 'f' AND n.nspname NOT LIKE 'pg\\_%' AND NOT EXISTS (
                SELECT 1 FROM pg_index i WHERE i.indrelid = k.conrelid
                  AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] @> k.conkey
                  AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(k.conkey)] <@ k.conkey)
            ORDER BY n.nspname, c.relname, k.conname
            """)
        for row in keys {
            guard let index = position["\(try row.decode("schema", as: String.self)).\(try row.decode("table_name", as: String.self))"] else { continue }
            facts[index].unindexedForeignKeys.append(.init(name: try row.decode("name"), columns: try row.decode("columns")))
        }
    }
}
