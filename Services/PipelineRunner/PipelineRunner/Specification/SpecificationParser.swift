import Foundation
import Platform
import SharedModels

/// A source or target given `002`-style, by host, port and database instead of a connection: the pipeline
/// service turns it into the one connection of connections-vault that matches.
struct InlineEndpoint: Sendable, Equatable {
    enum Side: Sendable, Equatable {
        case source(Int), target(Int)
    }

    var side: Side
    var host: String
    var port: Int
    var database: String

    /// The JSON path of the source or target (`sources[0]`).
    var path: String {
        switch side {
        case .source(let index): "sources[\(index)]"
        case .target(let index): "targets[\(index)]"
        }
    }
}

/// A parsed pipeline: the specification, and the endpoints that still need a connection id.
struct ParsedSpecification: Sendable, Equatable {
    var specification: PipelineSpecification
    var inlineEndpoints: [InlineEndpoint]

    /// Sets the connection an inline endpoint resolved to.
    mutating func resolve(_ endpoint: InlineEndpoint, to connectionID: Int64) {
        switch endpoint.side {
        case .source(let index): specification.sources[index].connectionID = connectionID
        case .target(let index): specification.targets[index].connectionID = connectionID
        }
    }
}

/// Turns the JSON of a pipeline into a ``PipelineSpecification``, or into every problem it has, each with its
/// JSON path. Pure: no I/O; connections and tables are checked at deploy time.
enum SpecificationParser {
    /// Top-level fields of a pipeline body (`project_id` is the caller's to read).
    static let fields: Set<String> = ["project_id", "name", "description", "schedule", "sources", "transformations", "targets"]
    /// Source and target types the engine runs today.
    static let runnableSources: [Source.Kind] = [.postgresql]
    static let runnableTargets: [Target.Kind] = [.postgresql, .clickhouse]
    /// Transformation types as the error for an unsupported one lists them.
    static let supportedTransformations = Transformation.Kind.allCases.map(\.rawValue).joined(separator: ", ")

    /// The specification of `body`, or all its problems.
    static func parse(_ body: [String: JSONValue]) throws(SpecificationProblems) -> ParsedSpecification {
        let reader = JSONReader()
        reader.rejectUnknownKeys(body, known: fields, at: "")
        var name = reader.string(body["name"], at: "name")
        if let text = name {
            if TextRules.isName(text) { name = text.trimmingCharacters(in: .whitespaces) } else {
                reader.problem("name", "must be 1 to 200 characters without control characters")
                name = nil
            }
        }
        var description = ""
        if let value = body["description"], value != .null, value != "" {
            description = reader.string(value, at: "description", maximum: 2000) ?? ""
        }
        let schedule = reader.string(body["schedule"], at: "schedule", required: false, maximum: 100)
        if let schedule { checkSchedule(schedule, reader: reader) }

        var inline: [InlineEndpoint] = []
        var ids = Set<String>()
        func uniqueID(_ value: JSONValue?, at path: String) -> String {
            guard let id = reader.string(value, at: path, maximum: 64) else { return "" }
            if !id.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-" }) {
                reader.problem(path, "may hold only letters, digits, _ and -")
            } else if !ids.insert(id).inserted {
                reader.problem(path, "\(id) is used by another source or target")
            }
            return id
        }

        var sources: [Source] = []
        // One query on one source is what the engine pushes the transformations into; a query source joins tables.
        for (index, value) in (reader.array(body["sources"], at: "sources", minimum: 1, maximum: 1) ?? []).enumerated() {
            let path = "sources[\(index)]"
            guard let object = reader.object(value, at: path) else { continue }
            reader.rejectUnknownKeys(object, known: ["id", "type", "connection_id", "config", "incremental"], at: path)
            let id = uniqueID(object["id"], at: path + ".id")
            let kind = reader.choice(object["type"], at: path + ".type", as: Source.Kind.self)
            guard let config = reader.object(object["config"], at: path + ".config") else { continue }
            var source = Source(id: id, type: kind ?? .postgresql, config: .init())
            switch kind {
            case .postgresql:
                reader.rejectUnknownKeys(config, known: ["table", "query", "host", "port", "database"], at: path + ".config")
                (source.connectionID, inline) = endpoint(object, config, side: .source(index), at: path, reader: reader, inline: inline)
                source.config.table = config["table"].flatMap { tableName($0, at: path + ".config.table", reader: reader) }
                if let query = reader.string(config["query"], at: path + ".config.query", required: false, maximum: 10_000) {
                    fragment(at: path + ".config.query", reader: reader) { () throws(SQLFragmentError) in try SQLFragment.validateSourceQuery(query) }
                    source.config.query = query
                }
                switch (config["table"], config["query"]) {
                case (nil, nil): reader.problem(path + ".config", "needs table or query")
                case (.some, .some): reader.problem(path + ".config", "takes table or query, not both")
                default: break
                }
            case .file:
                reader.problem(path + ".type", unsupported("source", runnable: runnableSources.map(\.rawValue)))
            case nil:
                break
            }
            if let incremental = object["incremental"], incremental != .null, let fields = reader.object(incremental, at: path + ".incremental") {
                reader.rejectUnknownKeys(fields, known: ["cursor_column"], at: path + ".incremental")
                if let column = identifier(fields["cursor_column"], at: path + ".incremental.cursor_column", reader: reader) {
                    source.incremental = .init(cursorColumn: column)
                }
            }
            sources.append(source)
        }

        var steps: [TransformationStep] = []
        if let values = body["transformations"], values != .null {
            for (index, value) in (reader.array(values, at: "transformations", maximum: 50) ?? []).enumerated() {
                if let step = transformation(value, at: "transformations[\(index)]", reader: reader) { steps.append(step) }
            }
        }

        var targets: [Target] = []
        for (index, value) in (reader.array(body["targets"], at: "targets", minimum: 1, maximum: 10) ?? []).enumerated() {
            let path = "targets[\(index)]"
            guard let object = reader.object(value, at: path) else { continue }
            reader.rejectUnknownKeys(object, known: ["id", "type", "connection_id", "config"], at: path)
            let id = uniqueID(object["id"], at: path + ".id")
            let kind = reader.choice(object["type"], at: path + ".type", as: Target.Kind.self)
            guard let config = reader.object(object["config"], at: path + ".config") else { continue }
            if kind == .file {
                reader.problem(path + ".type", unsupported("target", runnable: runnableTargets.map(\.rawValue)))
                continue
            }
            reader.rejectUnknownKeys(config, known: ["table", "mode", "key", "create_table", "parallelism", "host", "port", "database"],
                                     at: path + ".config")
            var target = Target(id: id, type: kind ?? .postgresql, config: .init(table: "", mode: .append, key: [], createTable: false))
            (target.connectionID, inline) = endpoint(object, config, side: .target(index), at: path, reader: reader, inline: inline)
            target.config.table = tableName(config["table"], at: path + ".config.table", reader: reader) ?? ""
            if let mode = config["mode"], mode != .null { target.config.mode = reader.choice(mode, at: path + ".config.mode", as: Target.Mode.self) ?? .append }
            if let key = config["key"], key != .null { target.config.key = identifiers(key, at: path + ".config.key", reader: reader) }
            if kind == .clickhouse && target.config.mode == .upsert {
                reader.problem(path + ".config.mode", "clickhouse targets take append or replace: ClickHouse has no upsert "
                               + "(append into a ReplacingMergeTree table, or replace)")
            } else if target.config.mode == .upsert && target.config.key.isEmpty {
                reader.problem(path + ".config.key", "is required for mode upsert (the columns rows are matched on)")
            }
            target.config.createTable = reader.bool(config["create_table"], at: path + ".config.create_table", default: false)
            if let value = config["parallelism"], value != .null,
               let parallelism = reader.positiveInteger(value, at: path + ".config.parallelism") {
                if parallelism > RangeSplitter.maximumParts {
                    reader.problem(path + ".config.parallelism", "must be 1 to \(RangeSplitter.maximumParts)")
                } else {
                    target.config.parallelism = Int(parallelism)
                }
            }
            targets.append(target)
        }

        guard reader.problems.isEmpty, let name else { throw SpecificationProblems(reader.problems) }
        let specification = PipelineSpecification(
            name: name, description: description, schedule: schedule, sources: sources, transformations: steps, targets: targets)
        return ParsedSpecification(specification: specification, inlineEndpoints: inline)
    }

    /// The transformation at `path`, or `nil` after recording its problems.
    private static func transformation(_ value: JSONValue, at path: String, reader: JSONReader) -> TransformationStep? {
        guard let object = reader.object(value, at: path) else { return nil }
        guard let typeName = reader.string(object["type"], at: path + ".type", maximum: 50) else { return nil }
        guard let kind = Transformation.Kind(rawValue: typeName) else {
            let why = typeName == "python"
                ? "python transformations are not supported: the engine runs transformations inside PostgreSQL"
                : "\(typeName) is not a transformation type"
            reader.problem(path + ".type", "\(why); supported types: \(supportedTransformations)", code: .unsupportedTransformation)
            return nil
        }
        let id = object["id"].flatMap { $0 == .null ? nil : reader.string($0, at: path + ".id", maximum: 64) }
        let problemsBefore = reader.problems.count
        let transformation: Transformation
        func expression(_ key: String) -> String {
            let text = reader.string(object[key], at: "\(path).\(key)", maximum: 10_000) ?? ""
            fragment(at: "\(path).\(key)", reader: reader) { () throws(SQLFragmentError) in try SQLFragment.validateExpression(text) }
            return text
        }
        switch kind {
        case .filter:
            reader.rejectUnknownKeys(object, known: ["id", "type", "condition"], at: path)
            transformation = .filter(condition: expression("condition"))
        case .select:
            reader.rejectUnknownKeys(object, known: ["id", "type", "columns", "rename"], at: path)
            let columns = identifiers(object["columns"], at: path + ".columns", reader: reader, minimum: 1)
            var rename: [String: String] = [:]
            if let value = object["rename"], value != .null, let pairs = reader.object(value, at: path + ".rename") {
                for (from, to) in pairs.sorted(by: { $0.key < $1.key }) {
                    let at = "\(path).rename.\(from)"
                    guard identifier(.string(from), at: at, reader: reader) != nil, let new = identifier(to, at: at, reader: reader) else { continue }
                    if !columns.contains(from) { reader.problem(at, "renames \(from), which is not among the selected columns") }
                    rename[from] = new
                }
            }
            let output = columns.map { rename[$0] ?? $0 }
            if let twice = output.first(where: { name in output.filter { $0 == name }.count > 1 }) {
                reader.problem(path + ".rename", "makes two columns named \(twice)")
            }
            transformation = .select(columns: columns, rename: rename)
        case .derive:
            reader.rejectUnknownKeys(object, known: ["id", "type", "column", "expression"], at: path)
            let column = identifier(object["column"], at: path + ".column", reader: reader) ?? ""
            transformation = .derive(column: column, expression: expression("expression"))
        case .cast:
            reader.rejectUnknownKeys(object, known: ["id", "type", "columns"], at: path)
            var casts: [String: String] = [:]
            if let pairs = reader.object(object["columns"], at: path + ".columns") {
                if pairs.isEmpty { reader.problem(path + ".columns", "must name at least one column") }
                for (column, type) in pairs.sorted(by: { $0.key < $1.key }) {
                    let at = "\(path).columns.\(column)"
                    guard identifier(.string(column), at: at, reader: reader) != nil, let name = reader.string(type, at: at, maximum: 100) else { continue }
                    fragment(at: at, reader: reader) { () throws(SQLFragmentError) in try SQLFragment.validateTypeName(name) }
                    casts[column] = name
                }
            }
            transformation = .cast(columns: casts)
        case .aggregate:
            reader.rejectUnknownKeys(object, known: ["id", "type", "group_by", "aggregations"], at: path)
            let groupBy = object["group_by"].map { identifiers($0, at: path + ".group_by", reader: reader) } ?? []
            var aggregations: [String: String] = [:]
            if let pairs = reader.object(object["aggregations"], at: path + ".aggregations") {
                if pairs.isEmpty { reader.problem(path + ".aggregations", "must define at least one output column") }
                for (column, value) in pairs.sorted(by: { $0.key < $1.key }) {
                    let at = "\(path).aggregations.\(column)"
                    guard identifier(.string(column), at: at, reader: reader) != nil, let text = reader.string(value, at: at, maximum: 10_000) else { continue }
                    fragment(at: at, reader: reader) { () throws(SQLFragmentError) in try SQLFragment.validateExpression(text) }
                    if groupBy.contains(column) { reader.problem(at, "\(column) is also a group_by column") }
                    aggregations[column] = text
                }
            }
            transformation = .aggregate(groupBy: groupBy, aggregations: aggregations)
        case .deduplicate:
            reader.rejectUnknownKeys(object, known: ["id", "type", "key"], at: path)
            transformation = .deduplicate(key: identifiers(object["key"], at: path + ".key", reader: reader, minimum: 1))
        case .sql:
            reader.rejectUnknownKeys(object, known: ["id", "type", "query"], at: path)
            let query = reader.string(object["query"], at: path + ".query", maximum: 10_000) ?? ""
            fragment(at: path + ".query", reader: reader) { () throws(SQLFragmentError) in try SQLFragment.validateQuery(query) }
            transformation = .sql(query: query)
        }
        return reader.problems.count == problemsBefore ? TransformationStep(id: id, transformation) : nil
    }

    /// The connection of a source or target: `connection_id`, or a `002`-style inline host/port/database to be
    /// resolved (credentials never belong in a pipeline).
    private static func endpoint(
        _ object: [String: JSONValue], _ config: [String: JSONValue], side: InlineEndpoint.Side, at path: String,
        reader: JSONReader, inline: [InlineEndpoint]
    ) -> (Int64?, [InlineEndpoint]) {
        let hasInline = config["host"] != nil || config["database"] != nil || config["port"] != nil
        if let id = object["connection_id"], id != .null {
            if hasInline { reader.problem(path + ".config", "names its database by connection_id; remove host, port and database") }
            return (reader.positiveInteger(id, at: path + ".connection_id"), inline)
        }
        guard hasInline else {
            reader.problem(path + ".connection_id", "is required (the id of a connection in connections-vault)")
            return (nil, inline)
        }
        let host = reader.string(config["host"], at: path + ".config.host", maximum: 255)
        let database = reader.string(config["database"], at: path + ".config.database", maximum: 255)
        var port = 5432
        if let value = config["port"], value != .null {
            if let number = reader.positiveInteger(value, at: path + ".config.port"), number <= 65535 {
                port = Int(number)
            } else {
                reader.problem(path + ".config.port", "must be a port number from 1 to 65535")
            }
        }
        guard let host, let database else { return (nil, inline) }
        return (nil, inline + [InlineEndpoint(side: side, host: host, port: port, database: database)])
    }

    /// A column name, validated.
    private static func identifier(_ value: JSONValue?, at path: String, reader: JSONReader) -> String? {
        guard let text = reader.string(value, at: path, maximum: 63) else { return nil }
        do throws(SQLFragmentError) {
            return try SQLIdentifier(text).name
        } catch {
            reader.problem(path, error.reason)
            return nil
        }
    }

    /// A list of distinct column names.
    private static func identifiers(_ value: JSONValue?, at path: String, reader: JSONReader, minimum: Int = 0) -> [String] {
        var names: [String] = []
        for (index, item) in (reader.array(value, at: path, minimum: minimum, maximum: 500) ?? []).enumerated() {
            guard let name = identifier(item, at: "\(path)[\(index)]", reader: reader) else { continue }
            if names.contains(name) { reader.problem("\(path)[\(index)]", "\(name) is listed twice") } else { names.append(name) }
        }
        return names
    }

    /// `schema.table` or `table`, validated; stored as the client wrote it.
    private static func tableName(_ value: JSONValue?, at path: String, reader: JSONReader) -> String? {
        guard let text = reader.string(value, at: path, maximum: 130) else { return nil }
        do throws(SQLFragmentError) {
            _ = try SQLTableName(parsing: text)
            return text
        } catch {
            reader.problem(path, error.reason)
            return nil
        }
    }

    /// Runs a fragment rule, recording its refusal at `path`.
    private static func fragment(at path: String, reader: JSONReader, _ check: () throws(SQLFragmentError) -> Void) {
        do throws(SQLFragmentError) {
            try check()
        } catch {
            reader.problem(path, error.reason)
        }
    }

    /// A cron expression the scheduler can run (in UTC, the time zone of pipeline schedules).
    private static func checkSchedule(_ schedule: String, reader: JSONReader) {
        do throws(CronError) {
            _ = try CronExpression(schedule)
        } catch {
            reader.problem("schedule", "is not a cron expression the scheduler can run: \(error)")
        }
    }

    private static func unsupported(_ side: String, runnable: [String]) -> String {
        "file \(side)s need file-storage, which this deployment does not offer yet; supported \(side) types: \(runnable.joined(separator: ", "))"
    }
}
