import Foundation

/// The target side of one load into ClickHouse (18.16 and later): the result's columns in ClickHouse types with the
/// source expressions that produce text ClickHouse parses, a staging table the blocks go into, and the statements
/// that put the stage in place of (or after) the target. Builds statements only; the loader sends them.
///
/// ClickHouse has no transactions: `replace` is one `RENAME TABLE` of both names, which readers see whole, and the
/// run is recorded in `<database>._platform_loads` right after. Newer servers also offer `EXCHANGE TABLES` and
/// insert deduplication tokens; 18.16, the server Debian ships, has neither, so only what it supports is used.
struct ClickHouseLoad: Sendable, Equatable {
    /// A result column: its ClickHouse type, and the expression over the source's column that feeds it.
    struct Column: Sendable, Equatable {
        var name: String
        var type: String
        /// SQL over the quoted source column, evaluated by PostgreSQL before `COPY` writes it.
        var expression: String
    }

    let database: String
    let table: String
    let columns: [Column]
    let mode: Target.Mode
    let key: [String]
    let runID: String
    let pipelineID: String
    let targetID: String

    /// `database.table` or `table` (in the connection's database); ClickHouse names are validated like PostgreSQL's.
    init(table name: String, database: String, columns: [PostgresLoad.Column], mode: Target.Mode, key: [String], runID: String,
         pipelineID: String, targetID: String) throws {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count) else { throw SQLFragmentError("is not a table name; write table or database.table") }
        self.database = try SQLIdentifier(parts.count == 2 ? parts[0] : database).name
        self.table = try SQLIdentifier(parts.last!).name
        self.columns = columns.map { Self.column($0.name, postgresType: $0.type, nullable: !key.contains($0.name)) }
        self.mode = mode
        self.key = key
        self.runID = runID
        self.pipelineID = pipelineID
        self.targetID = targetID
    }

    /// The ClickHouse type for a PostgreSQL type (as `format_type` names it), and how PostgreSQL writes its values
    /// so that ClickHouse reads them exactly. Key columns are not `Nullable` (ClickHouse sorts by them).
    static func column(_ name: String, postgresType: String, nullable: Bool) -> Column {
        let quoted = SQLIdentifier.quote(name)
        let type = postgresType.lowercased()
        var clickHouse = "String"
        var expression = quoted
        switch type {
        case "smallint": clickHouse = "Int16"
        case "integer": clickHouse = "Int32"
        case "bigint": clickHouse = "Int64"
        case "real": clickHouse = "Float32"
        case "double precision": clickHouse = "Float64"
        case "uuid": clickHouse = "UUID"
        case "boolean":
            clickHouse = "UInt8"
            expression = "CAST(\(quoted) AS integer)"
        case "date":
            // Date holds 1970-01-01 to 2105: anything else would be stored wrong without an error, so the source
            // refuses it, naming the value (the cast of a text that is no date is what raises).
            clickHouse = "Date"
            expression = """
                CASE WHEN \(quoted) >= DATE '1970-01-01' AND \(quoted) < DATE '2106-01-01' THEN \(quoted) \
                ELSE CAST('outside the dates ClickHouse holds (1970 to 2105): ' || \(quoted)::text AS date) END
                """
        case _ where type.hasPrefix("timestamp"):
            // Whole seconds since the epoch, which DateTime reads whatever the server's time zone.
            clickHouse = "DateTime"
            expression = """
                CASE WHEN \(quoted) >= '1970-01-01 00:00:00+00' AND \(quoted) < '2106-01-01 00:00:00+00' \
                THEN floor(extract(epoch FROM \(quoted)))::bigint \
                ELSE CAST('outside the times ClickHouse holds (1970 to 2105): ' || \(quoted)::text AS bigint) END
                """
        case _ where type.hasPrefix("numeric("):
            let digits = type.dropFirst("numeric(".count).dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            if digits.count == 2, digits[0] <= 38 { clickHouse = "Decimal(\(digits[0]), \(digits[1]))" }
        default:
            // text, varchar, numeric without a scale (exact only as text), json, arrays, intervals, bytea ...
            break
        }
        return Column(name: name, type: nullable ? "Nullable(\(clickHouse))" : clickHouse, expression: expression)
    }

    /// A name in backquotes, as ClickHouse quotes identifiers.
    static func quote(_ name: String) -> String {
        "`" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "`", with: "\\`") + "`"
    }

    /// A string literal.
    static func literal(_ value: String) -> String {
        var escaped = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": escaped += "\\\\"
            case "'": escaped += "\\'"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            case "\r": escaped += "\\r"
            case "\0": escaped += "\\0"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return "'\(escaped)'"
    }

    var target: String { "\(Self.quote(database)).\(Self.quote(table))" }
    /// `_platform_stage_run_12` in the target's database.
    var stage: String { "\(Self.quote(database)).\(Self.quote("_platform_stage_\(runID)"))" }
    /// The target's previous contents for the moment of a `replace`.
    var previous: String { "\(Self.quote(database)).\(Self.quote("_platform_old_\(runID)"))" }
    /// `<database>._platform_loads`: which runs the database has committed.
    var ledger: String { "\(Self.quote(database)).\(Self.quote("_platform_loads"))" }
    var displayName: String { "\(database).\(table)" }

    private var columnList: String { columns.map { Self.quote($0.name) }.joined(separator: ", ") }

    /// Creates the ledger if the database has none.
    var createLedger: String {
        """
        CREATE TABLE IF NOT EXISTS \(ledger) (run_id String, target_id String, pipeline_id String, rows Int64, \
        cursor_value Nullable(String), loaded_at DateTime DEFAULT now()) ENGINE = Log
        """
    }

    /// Whether this run is in the ledger already, as rows loaded.
    var ledgerEntry: String {
        "SELECT rows FROM \(ledger) WHERE run_id = \(Self.literal(runID)) AND target_id = \(Self.literal(targetID)) FORMAT TSV"
    }

    /// The last cursor value this pipeline's target committed.
    var lastCursor: String {
        """
        SELECT cursor_value FROM \(ledger) WHERE pipeline_id = \(Self.literal(pipelineID)) AND target_id = \(Self.literal(targetID)) \
        AND isNotNull(cursor_value) ORDER BY loaded_at DESC LIMIT 1 FORMAT TSVRaw
        """
    }

    /// The target's engine (`MergeTree`, `ReplacingMergeTree`, `Log` ...), empty when there is no such table.
    var targetEngine: String {
        "SELECT engine FROM system.tables WHERE database = \(Self.literal(database)) AND name = \(Self.literal(table)) FORMAT TSVRaw"
    }

    /// Engines a stage can copy and be checked in: their `count()` is the rows inserted until something merges
    /// them away. Replicated tables share a coordination path that a copy would clash with, and distributed or
    /// view-like ones hold no rows of their own: those are refused.
    static let plainEngines: Set<String> = ["MergeTree", "Log", "TinyLog", "StripeLog"]
    static let mergingEngines: Set<String> = ["ReplacingMergeTree", "SummingMergeTree", "AggregatingMergeTree", "CollapsingMergeTree",
                                              "VersionedCollapsingMergeTree", "GraphiteMergeTree"]

    /// A fresh stage: shaped like the target when it exists, else from the result (a MergeTree sorted by the key).
    func createStage(targetExists: Bool) -> [String] {
        let create: String
        if targetExists {
            create = "CREATE TABLE \(stage) AS \(target)"
        } else {
            let definitions = columns.map { "\(Self.quote($0.name)) \($0.type)" }.joined(separator: ", ")
            let order = key.isEmpty ? "tuple()" : "(\(key.map(Self.quote).joined(separator: ", ")))"
            create = "CREATE TABLE \(stage) (\(definitions)) ENGINE = MergeTree() ORDER BY \(order)"
        }
        return ["DROP TABLE IF EXISTS \(stage)", create]
    }

    /// The statement each block of rows is sent with.
    var insert: String { "INSERT INTO \(stage) (\(columnList)) FORMAT TSV" }

    /// The query PostgreSQL runs for `COPY`: the compiled query's rows, written as ClickHouse reads them.
    func sourceQuery(_ compiled: String) -> String {
        "SELECT \(columns.map { "\($0.expression) AS \(SQLIdentifier.quote($0.name))" }.joined(separator: ", ")) FROM (\(compiled)) AS result"
    }

    /// What puts the loaded stage in place: `replace` (and a new table) renames it over the target in one statement;
    /// `append` inserts it into the target. The ledger row follows.
    func apply(targetExists: Bool) -> [String] {
        guard targetExists else { return ["RENAME TABLE \(stage) TO \(target)"] }
        switch mode {
        case .replace:
            return ["DROP TABLE IF EXISTS \(previous)", "RENAME TABLE \(target) TO \(previous), \(stage) TO \(target)", "DROP TABLE \(previous)"]
        case .append, .upsert:
            return ["INSERT INTO \(target) (\(columnList)) SELECT \(columnList) FROM \(stage)", "DROP TABLE \(stage)"]
        }
    }

    /// Records the committed run.
    func record(rows: Int64, cursor: String?) -> String {
        """
        INSERT INTO \(ledger) (run_id, target_id, pipeline_id, rows, cursor_value) VALUES (\(Self.literal(runID)), \
        \(Self.literal(targetID)), \(Self.literal(pipelineID)), \(rows), \(cursor.map(Self.literal) ?? "NULL"))
        """
    }
}
