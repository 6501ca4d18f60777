import Foundation

/// One query for the source database: its text with `$1`, `$2` … placeholders, and what each placeholder stands
/// for, in order. Nothing a user wrote as a value is ever in the text.
struct CompiledQuery: Sendable, Equatable {
    /// What a placeholder is bound to.
    enum Binding: Sendable, Hashable {
        /// The run parameter written `:name`.
        case parameter(String)
        /// The last cursor value an incremental source loaded.
        case cursor
    }

    var sql: String
    var bindings: [Binding]
}

/// A pipeline compiled for one run: the query that does the pipeline's work on the source (every transformation
/// pushed down into it, so PostgreSQL does the work and only the result crosses the network) and the columns it
/// yields, when they can be known before running it.
struct ExecutionPlan: Sendable, Equatable {
    var query: CompiledQuery
    /// The result's columns in order; `nil` after a `sql` step or over a query source whose columns were not given.
    var columns: [String]?
    /// The incremental cursor column, when the source is incremental.
    var cursorColumn: String?
}

/// Compiles a specification into an ``ExecutionPlan``. Pure: the engine gives it what it learned from the source
/// (its columns) and what the last run committed (whether there is a cursor value), and runs what comes out.
enum PlanCompiler {
    /// Why a specification cannot be compiled (a step needs columns that cannot be known, say), at its path.
    struct Refusal: Error, Sendable, Equatable {
        var path: String
        var reason: String
    }

    /// The plan of `specification`. `sourceColumns` are the columns of the source's table or query, in order
    /// (the engine reads them from the catalog or by describing the query); `afterCursor` filters an incremental
    /// source to rows past the last committed cursor value (bound as ``CompiledQuery/Binding/cursor``).
    /// `placeholder` writes the placeholder of the n-th binding (from 1): `$n` for a statement with bound
    /// parameters, or what the engine binds them through when the statement takes none (`COPY`).
    /// `range` limits a table source to one block range (``RangeSplitter``), for a copy split over connections.
    static func compile(_ specification: PipelineSpecification, sourceColumns: [String]?, afterCursor: Bool, range: BlockRange? = nil,
                        placeholder: @escaping (Int) -> String = { "$\($0)" }) throws -> ExecutionPlan {
        guard let source = specification.sources.first else { throw Refusal(path: "sources", reason: "has no source") }
        var builder = QueryBuilder(render: placeholder)
        var relation: String
        if let table = source.config.table {
            relation = "SELECT * FROM \(try SQLTableName(parsing: table).quoted)" + (range.map { " WHERE \($0.condition)" } ?? "")
        } else if let query = source.config.query {
            relation = "SELECT * FROM (\(try builder.bind(query))) AS source"
        } else {
            throw Refusal(path: "sources[0].config", reason: "has neither table nor query")
        }
        let cursor = source.incremental?.cursorColumn
        if let cursor, afterCursor {
            relation = "SELECT * FROM (\(relation)) AS source WHERE \(try SQLIdentifier(cursor).quoted) > \(builder.placeholder(for: .cursor))"
        }
        var columns = sourceColumns
        for (index, step) in specification.transformations.enumerated() {
            let path = "transformations[\(index)]"
            let input = "(\(relation)) AS s\(index)"
            switch step.transformation {
            case .filter(let condition):
                relation = "SELECT * FROM \(input) WHERE (\(try builder.bind(condition)))"
            case .select(let selected, let rename):
                let list = try selected.map { column in
                    let name = try SQLIdentifier(column).quoted
                    return try rename[column].map { "\(name) AS \(try SQLIdentifier($0).quoted)" } ?? name
                }
                relation = "SELECT \(list.joined(separator: ", ")) FROM \(input)"
                columns = selected.map { rename[$0] ?? $0 }
            case .derive(let column, let expression):
                let value = "(\(try builder.bind(expression))) AS \(try SQLIdentifier(column).quoted)"
                if let known = columns, known.contains(column) {
                    // A derived column that exists already replaces it, in its place.
                    let list = try known.map { $0 == column ? value : try SQLIdentifier($0).quoted }
                    relation = "SELECT \(list.joined(separator: ", ")) FROM \(input)"
                } else {
                    relation = "SELECT s\(index).*, \(value) FROM \(input)"
                    columns = columns.map { $0 + [column] }
                }
            case .cast(let casts):
                guard let known = columns else {
                    throw Refusal(path: path, reason: "casts columns that cannot be known here (after a sql step); cast inside the sql step")
                }
                let list = try known.map { column in
                    let name = try SQLIdentifier(column).quoted
                    return casts[column].map { "CAST(\(name) AS \($0)) AS \(name)" } ?? name
                }
                relation = "SELECT \(list.joined(separator: ", ")) FROM \(input)"
            case .aggregate(let groupBy, let aggregations):
                let keys = try groupBy.map { try SQLIdentifier($0).quoted }
                let values = try aggregations.keys.sorted().map { name in
                    "(\(try builder.bind(aggregations[name]!))) AS \(try SQLIdentifier(name).quoted)"
                }
                relation = "SELECT \((keys + values).joined(separator: ", ")) FROM \(input)"
                    + (keys.isEmpty ? "" : " GROUP BY \(keys.joined(separator: ", "))")
                columns = groupBy + aggregations.keys.sorted()
            case .deduplicate(let key):
                let keys = try key.map { try SQLIdentifier($0).quoted }.joined(separator: ", ")
                relation = "SELECT DISTINCT ON (\(keys)) * FROM \(input) ORDER BY \(keys)"
            case .sql(let query):
                relation = "SELECT * FROM (\(try withInput(relation, in: builder.bind(query)))) AS s\(index)"
                columns = nil
            }
        }
        return ExecutionPlan(query: CompiledQuery(sql: relation, bindings: builder.bindings), columns: columns, cursorColumn: cursor)
    }

    /// `query` with the rows so far as its relation `input`: a WITH query of its own, placed first so the
    /// query's own WITH queries may read it.
    static func withInput(_ relation: String, in query: String) throws -> String {
        let tokens = try SQLFragment.tokenize(query)
        let definition = "input AS (\(relation))"
        guard let first = tokens.first, first.normalized == "with" else { return "WITH \(definition) \(query)" }
        // After WITH (and RECURSIVE, which then applies to the query's own WITH queries as it did before).
        let after = tokens.count > 1 && tokens[1].normalized == "recursive" ? tokens[1] : first
        let scalars = Array(query.unicodeScalars)
        let split = after.offset + after.text.unicodeScalars.count
        return String(String.UnicodeScalarView(scalars[..<split])) + " \(definition)," + String(String.UnicodeScalarView(scalars[split...]))
    }
}

/// Collects the placeholders of one query: each run parameter and the cursor get one number, however often used.
private struct QueryBuilder {
    let render: (Int) -> String
    private(set) var bindings: [CompiledQuery.Binding] = []

    /// The placeholder (`$3`) of a binding, numbered on first use.
    mutating func placeholder(for binding: CompiledQuery.Binding) -> String {
        if let index = bindings.firstIndex(of: binding) { return render(index + 1) }
        bindings.append(binding)
        return render(bindings.count)
    }

    /// A validated fragment with its `:name` parameters turned into placeholders (by token, never by text search:
    /// `':name'` in a string and `::name` casts stay as they are).
    mutating func bind(_ fragment: String) throws -> String {
        let tokens = try SQLFragment.tokenize(fragment)
        let scalars = Array(fragment.unicodeScalars)
        var result = String.UnicodeScalarView()
        var position = 0
        for token in tokens where token.kind == .parameter {
            result.append(contentsOf: scalars[position..<token.offset])
            result.append(contentsOf: placeholder(for: .parameter(token.normalized)).unicodeScalars)
            position = token.offset + token.text.unicodeScalars.count
        }
        result.append(contentsOf: scalars[position...])
        return String(result)
    }
}
