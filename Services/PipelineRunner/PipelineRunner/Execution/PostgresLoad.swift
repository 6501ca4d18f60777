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

    /// How the stage becomes the target's contents, chosen before the rows are staged.
    enum Strategy: Sendable, Equatable {
        /// The target does not exist (append, replace): the stage, a logged table, is renamed to it.
        case rename
        /// `replace` of a plain table (``PostgresLoad/swappable``): the stage is built like the target (constraints,
        /// indexes, storage) and takes its place and its grants in one transaction; the old table is dropped.
        case swap
        /// Rows are inserted from an unlogged stage: append, upsert, and replace of a table with dependants
        /// (views, foreign keys, triggers, defaults, policies ...) that a new table would not carry over.
        case insert
    }

    /// The strategy for a target that exists or not, and can be swapped or not.
    func strategy(targetExists: Bool, swappable: Bool) -> Strategy {
        if !targetExists { return mode == .upsert ? .insert : .rename }
        return mode == .replace && swappable ? .swap : .insert
    }

    /// A fresh staging table: with the result's columns, or built like the target for a swap; unlogged only when
    /// its rows are copied into the target (it is rewritten from the source if lost).
    func createStage(_ strategy: Strategy) -> [String] {
        let definitions = columns.map { "\(SQLIdentifier.quote($0.name)) \($0.type)" }.joined(separator: ", ")
        let create = switch strategy {
        case .rename: "CREATE TABLE \(stage.quoted) (\(definitions))"
        case .swap:
            "CREATE TABLE \(stage.quoted) (LIKE \(target.quoted) INCLUDING CONSTRAINTS INCLUDING INDEXES INCLUDING STORAGE "
                + "INCLUDING COMPRESSION INCLUDING STATISTICS INCLUDING COMMENTS)"
        case .insert: "CREATE UNLOGGED TABLE \(stage.quoted) (\(definitions))"
        }
        return ["DROP TABLE IF EXISTS \(stage.quoted)", create]
    }

    /// The COPY that fills the staging table.
    var copyIn: String { "COPY \(stage.quoted) (\(columnList)) FROM STDIN" }

    /// Whether the target is a plain table that a new one can replace without losing anything: an ordinary, logged
    /// table of the connection's role, in the default tablespace, without storage options, a replica identity of its
    /// own, a comment, inheritance, partitions, triggers, row security, publications, foreign keys either way, views
    /// or rules over it, objects using its row type, sequences it owns, column defaults, identity or generated
    /// columns, column privileges or per-column statistics settings, and whose columns have exactly the types of
    /// the result (`$2`, `$3`: names and `format_type` types), so rows are stored as the inserting path would
    /// store them. Its grants are carried over (``grants``). Needs PostgreSQL 14 (`LIKE ... INCLUDING COMPRESSION`).
    var swappable: String {
        """
        SELECT coalesce((SELECT c.relkind = 'r' AND c.relpersistence = 'p' AND NOT c.relispartition AND c.reltablespace = 0
                AND c.reloptions IS NULL AND NOT c.relrowsecurity AND pg_get_userbyid(c.relowner) = current_user
                AND c.relreplident = 'd' AND obj_description(c.oid, 'pg_class') IS NULL
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refobjid = c.reltype AND d.deptype = 'n')
                AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
                                WHERE d.refobjid = c.oid AND d.classid = 'pg_class'::regclass AND s.relkind = 'S')
                AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                AND (a.attstattarget <> -1 OR a.attoptions IS NOT NULL))
                AND (SELECT array_agg(a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attname)
                     FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
                    = (SELECT array_agg(r.name || ' ' || r.type ORDER BY r.name) FROM unnest($2::text[], $3::text[]) AS r(name, type))
                AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid)
                AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
                AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
                AND NOT EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prrelid = c.oid)
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contype = 'f' AND (k.conrelid = c.oid OR k.confrelid = c.oid))
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refobjid = c.oid AND d.classid = 'pg_rewrite'::regclass)
                AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                AND (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' OR a.attacl IS NOT NULL))
            FROM pg_class c WHERE c.oid = to_regclass($1)), false) AS swappable
        """
    }

    /// The target's grants (other than its owner's) as statements for the table that replaces it.
    var grants: String {
        """
        SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, $1::text,
                      CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
        FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = to_regclass($1) AND a.grantee <> c.relowner
        """
    }

    /// Pairs of the stage's indexes and the target's with the same definition, so the new ones take the old names
    /// (a primary key's constraint name included) once the old table is gone.
    var indexNames: String {
        """
        WITH shapes AS (SELECT i.indrelid, c.relname,
                               -- What an index is: its method and keys, unique or not, primary key or not, and which kind
                               -- of constraint (if any) it backs.
                               regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') || ' ' || i.indisunique::text || ' '
                                   || i.indisprimary::text || ' '
                                   || coalesce((SELECT k.contype::text FROM pg_constraint k WHERE k.conindid = i.indexrelid LIMIT 1), '-') AS shape
                        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                        WHERE i.indrelid IN (to_regclass($1), to_regclass($2))),
             numbered AS (SELECT *, row_number() OVER (PARTITION BY indrelid, shape ORDER BY relname) AS n FROM shapes)
        SELECT fresh.relname AS fresh, kept.relname AS kept
        FROM numbered fresh JOIN numbered kept USING (shape, n)
        WHERE fresh.indrelid = to_regclass($1) AND kept.indrelid = to_regclass($2)
        """
    }

    /// `_platform_old_run_12`: the target's name for the moment of a swap.
    var previous: SQLTableName { SQLTableName(schema: target.schema, table: try! SQLIdentifier("_platform_old_\(runID)")) }

    /// The statements of a swap, after the target has been locked and found swappable still: the target moves aside,
    /// the stage takes its name and its grants, the old table is dropped, the new indexes take the old names.
    func swap(grants: [String], indexNames: [(fresh: String, kept: String)]) -> [String] {
        ["ALTER TABLE \(target.quoted) RENAME TO \(previous.table.quoted)", "ALTER TABLE \(stage.quoted) RENAME TO \(target.table.quoted)"]
            + grants + ["DROP TABLE \(previous.quoted)"]
            + indexNames.filter { $0.fresh != $0.kept }.map {
                "ALTER INDEX \(SQLIdentifier.quote(target.schema.name)).\(SQLIdentifier.quote($0.fresh)) RENAME TO \(SQLIdentifier.quote($0.kept))"
            }
    }

    /// The `.rename` strategy's one statement: the stage becomes the target.
    var renameStage: String { "ALTER TABLE \(stage.quoted) RENAME TO \(target.table.quoted)" }

    /// The `.insert` strategy's statements, in the applying transaction after the ledger has been checked: the target
    /// made when asked (with a unique index on the key for upserts), the rows applied by mode, the stage dropped.
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
