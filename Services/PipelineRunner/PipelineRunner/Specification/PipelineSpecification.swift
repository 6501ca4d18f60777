import Foundation
import SharedModels

/// What a pipeline does, stored with each of its versions: where the data comes from, what is done to it (pushed
/// down into one query on the source by the engine) and where it goes. Built only by ``SpecificationParser``, so a
/// stored specification is always a valid one.
struct PipelineSpecification: Codable, Sendable, Equatable {
    var name: String
    var description: String
    /// A cron expression; the scheduler runs the deployed version on it.
    var schedule: String?
    var sources: [Source]
    var transformations: [TransformationStep]
    var targets: [Target]

    /// Every connection the pipeline reads or writes, with the JSON path that names it.
    var connections: [(path: String, id: Int64)] {
        sources.enumerated().compactMap { index, source in source.connectionID.map { ("sources[\(index)].connection_id", $0) } }
            + targets.enumerated().compactMap { index, target in target.connectionID.map { ("targets[\(index)].connection_id", $0) } }
    }
}

/// Where a pipeline reads.
struct Source: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable, CaseIterable {
        case postgresql, file
    }

    /// What to read: a table or one query, or (for `file`) a stored file.
    struct Config: Codable, Sendable, Equatable {
        var table: String?
        var query: String?
        var file: String?
        var format: String?
    }

    /// Incremental reads: only rows whose cursor is past the last one loaded.
    struct Incremental: Codable, Sendable, Equatable {
        var cursorColumn: String

        enum CodingKeys: String, CodingKey {
            case cursorColumn = "cursor_column"
        }
    }

    var id: String
    var type: Kind
    var connectionID: Int64?
    var config: Config
    var incremental: Incremental?

    enum CodingKeys: String, CodingKey {
        case id, type, config, incremental
        case connectionID = "connection_id"
    }
}

/// One transformation, with the optional id a client gave it.
struct TransformationStep: Codable, Sendable, Equatable {
    var id: String?
    var transformation: Transformation

    enum CodingKeys: String, CodingKey {
        case id, type, condition, columns, rename, column, expression, groupBy = "group_by", aggregations, key, query
    }

    init(id: String? = nil, _ transformation: Transformation) {
        self.id = id
        self.transformation = transformation
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decodeIfPresent(String.self, forKey: .id)
        let type = try container.decode(Transformation.Kind.self, forKey: .type)
        switch type {
        case .filter: transformation = .filter(condition: try container.decode(String.self, forKey: .condition))
        case .select:
            transformation = .select(columns: try container.decode([String].self, forKey: .columns),
                                     rename: try container.decodeIfPresent([String: String].self, forKey: .rename) ?? [:])
        case .derive:
            transformation = .derive(column: try container.decode(String.self, forKey: .column),
                                     expression: try container.decode(String.self, forKey: .expression))
        case .cast: transformation = .cast(columns: try container.decode([String: String].self, forKey: .columns))
        case .aggregate:
            transformation = .aggregate(groupBy: try container.decode([String].self, forKey: .groupBy),
                                        aggregations: try container.decode([String: String].self, forKey: .aggregations))
        case .deduplicate: transformation = .deduplicate(key: try container.decode([String].self, forKey: .key))
        case .sql: transformation = .sql(query: try container.decode(String.self, forKey: .query))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(id, forKey: .id)
        try container.encode(transformation.kind, forKey: .type)
        switch transformation {
        case .filter(let condition): try container.encode(condition, forKey: .condition)
        case .select(let columns, let rename):
            try container.encode(columns, forKey: .columns)
            if !rename.isEmpty { try container.encode(rename, forKey: .rename) }
        case .derive(let column, let expression):
            try container.encode(column, forKey: .column)
            try container.encode(expression, forKey: .expression)
        case .cast(let columns): try container.encode(columns, forKey: .columns)
        case .aggregate(let groupBy, let aggregations):
            try container.encode(groupBy, forKey: .groupBy)
            try container.encode(aggregations, forKey: .aggregations)
        case .deduplicate(let key): try container.encode(key, forKey: .key)
        case .sql(let query): try container.encode(query, forKey: .query)
        }
    }
}

/// What the engine does to the rows between source and targets; every fragment is validated SQL.
enum Transformation: Sendable, Equatable {
    /// Keeps the rows for which `condition` holds.
    case filter(condition: String)
    /// Keeps `columns`, renaming some (`rename` maps old names to new ones).
    case select(columns: [String], rename: [String: String])
    /// Adds `column` computed by `expression`.
    case derive(column: String, expression: String)
    /// Casts columns to types (column → type name).
    case cast(columns: [String: String])
    /// Groups by `groupBy` and computes `aggregations` (output column → aggregate expression).
    case aggregate(groupBy: [String], aggregations: [String: String])
    /// Keeps one row per `key`.
    case deduplicate(key: [String])
    /// One `SELECT` over the relation `input` (the rows so far).
    case sql(query: String)

    /// The `type` of a transformation in JSON.
    enum Kind: String, Codable, Sendable, CaseIterable {
        case filter, select, derive, cast, aggregate, deduplicate, sql
    }

    var kind: Kind {
        switch self {
        case .filter: .filter
        case .select: .select
        case .derive: .derive
        case .cast: .cast
        case .aggregate: .aggregate
        case .deduplicate: .deduplicate
        case .sql: .sql
        }
    }
}

/// Where a pipeline writes.
struct Target: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable, CaseIterable {
        case postgresql, clickhouse, file
    }

    /// How rows land in the target table.
    enum Mode: String, Codable, Sendable, CaseIterable {
        case append, replace, upsert
    }

    struct Config: Codable, Sendable, Equatable {
        var table: String
        var mode: Mode
        /// The upsert key (columns of the result).
        var key: [String]
        /// Whether the engine creates the table from the result's columns when it is missing.
        var createTable: Bool
        /// Connections that copy ranges of the source table at once (``RangeSplitter``); `nil` for the engine's default.
        var parallelism: Int? = nil

        enum CodingKeys: String, CodingKey {
            case table, mode, key, parallelism
            case createTable = "create_table"
        }
    }

    var id: String
    var type: Kind
    var connectionID: Int64?
    var config: Config

    enum CodingKeys: String, CodingKey {
        case id, type, config
        case connectionID = "connection_id"
    }
}
