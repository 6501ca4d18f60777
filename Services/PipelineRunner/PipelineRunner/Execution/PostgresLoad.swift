import Foundation
import Platform

/// The target side of one load into PostgreSQL: a staging table the rows stream into, then one transaction that
/// applies it by mode and records the run in the target's load ledger, so a target is never half-loaded and a
/// committed run is recognised if its runner dies afterwards. Builds statements only; the executor runs them.
struct PostgresLoad: Sendable {
    /// A column of the result, with its type as `format_type` writes it.
    struct Column: Sendable, Equatable {
        var name: String
        var type: String
    }

    let target: SQLTableName
    let columns: [Column]
    let mode: Target.Mode
    let key: [String]
    let createTable: Bool
    /// The run being loaded (`run_12`), the ledger's key with ``targetID``.
    let runID: String
    let pipelineID: String
    let targetID: String

    /// `_platform_stage_run_12` beside the target, dropped once applied (and by the next attempt of the run).
    var stage: SQLTableName { SQLTableName(schema: target.schema, table: try! SQLIdentifier("_platform_stage_\(runID)")) }
    /// `<schema>._platform_loads`: which runs the target's schema has committed.
    var ledger: SQLTableName { SQLTableName(schema: target.schema, table: try! SQLIdentifier("_platform_loads")) }

    private var columnList: String { columns.map { SQLIdentifier.quote($0.name) }.joined(separator: ", ") }

    /// Creates the ledger if the schema has none.
    var createLedger: String {
        """
        CREATE TABLE IF NOT EXISTS \(ledger.quoted) (run_id text NOT NULL, target_id text NOT NULL, pipeline_id text NOT NULL,
            rows bigint NOT NULL, cursor_value text, loaded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, target_id))
        """
    }

    /// A fresh staging table with the result's columns (unlogged: it is rewritten from the source if lost).
    var createStage: [String] {
        let definitions = columns.map { "\(SQLIdentifier.quote($0.name)) \($0.type)" }.joined(separator: ", ")
        return ["DROP TABLE IF EXISTS \(stage.quoted)", "CREATE UNLOGGED TABLE \(stage.quoted) (\(definitions))"]
    }

    /// The COPY that fills the staging table.
    var copyIn: String { "COPY \(stage.quoted) (\(columnList)) FROM STDIN" }

    /// The statements of the applying transaction, after the ledger has been checked: the target made when asked
    /// (with a unique index on the key for upserts), the rows applied by mode, the staging table dropped.
    func apply(targetExists: Bool) -> [String] {
        var statements: [String] = []
        if !targetExists {
            statements.append("CREATE TABLE \(target.quoted) (LIKE \(stage.quoted))")
            if mode == .upsert { statements.append("CREATE UNIQUE INDEX ON \(target.quoted) (\(keyList))") }
        }
        let insert = "INSERT INTO \(target.quoted) (\(columnList)) SELECT \(columnList) FROM \(stage.quoted)"
        switch mode {
        case .append:
            statements.append(insert)
        case .replace:
            // DELETE, not TRUNCATE: readers keep seeing the old rows until the commit, and the new ones after it.
            statements.append("DELETE FROM \(target.quoted)")
            statements.append(insert)
        case .upsert:
            let updates = columns.map(\.name).filter { !key.contains($0) }.map { name -> String in
                let quoted = SQLIdentifier.quote(name)
                return "\(quoted) = EXCLUDED.\(quoted)"
            }
            // One row per key: a key twice in one load would make ON CONFLICT touch a row twice.
            let rows = "SELECT DISTINCT ON (\(keyList)) \(columnList) FROM \(stage.quoted) ORDER BY \(keyList)"
            statements.append("INSERT INTO \(target.quoted) (\(columnList)) \(rows) ON CONFLICT (\(keyList)) "
                              + (updates.isEmpty ? "DO NOTHING" : "DO UPDATE SET \(updates.joined(separator: ", "))"))
        }
        statements.append("DROP TABLE \(stage.quoted)")
        return statements
    }

    private var keyList: String { key.map { SQLIdentifier.quote($0) }.joined(separator: ", ") }
}
