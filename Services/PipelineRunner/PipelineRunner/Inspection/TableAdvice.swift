import Foundation

/// What `table_analysis` learns about one table from PostgreSQL's catalog and statistics, and what it recommends.
struct TableFacts: Sendable, Equatable, Encodable {
    /// An index never used for a scan since statistics were last reset.
    struct UnusedIndex: Sendable, Equatable, Encodable {
        var name: String
        var bytes: Int64
    }

    /// A foreign key with no index that starts with its columns.
    struct UnindexedForeignKey: Sendable, Equatable, Encodable {
        var name: String
        var columns: [String]
    }

    var schema: String
    var name: String
    var totalBytes: Int64
    var tableBytes: Int64
    var indexBytes: Int64
    /// The planner's estimate (`reltuples`), or the live tuples counted by statistics when there is none.
    var estimatedRows: Int64
    /// `count(*)`, for tables small enough to count.
    var exactRows: Int64?
    var liveTuples: Int64
    var deadTuples: Int64
    var sequentialScans: Int64
    var indexScans: Int64
    var lastVacuum: Date?
    var lastAutovacuum: Date?
    var lastAnalyze: Date?
    var lastAutoanalyze: Date?
    var hasPrimaryKey: Bool
    var unusedIndexes: [UnusedIndex] = []
    var unindexedForeignKeys: [UnindexedForeignKey] = []
    /// ``TableAdvice/recommendations(for:)`` of these facts.
    var recommendations: [Recommendation] = []

    /// The rows the table holds, as exactly as known.
    var rows: Int64 { exactRows ?? estimatedRows }
}

/// One thing to do about a table, with a stable code.
struct Recommendation: Sendable, Equatable, Encodable {
    enum Code: String, Sendable, Encodable {
        case noPrimaryKey = "NO_PRIMARY_KEY"
        case vacuum = "VACUUM"
        case analyze = "ANALYZE"
        case sequentialScans = "SEQUENTIAL_SCANS"
        case unusedIndex = "UNUSED_INDEX"
        case unindexedForeignKey = "UNINDEXED_FOREIGN_KEY"
    }

    var code: Code
    var message: String
}

/// The rules that turn a table's facts into recommendations. Pure: the thresholds are here and nowhere else.
enum TableAdvice {
    /// Dead row versions worth a vacuum: more than this many, and more than ``deadShare`` of the live ones.
    static let deadMinimum: Int64 = 1_000
    static let deadShare = 0.2
    /// Sequential scans worth a look: tables of at least this many rows scanned whole ten times as often as by index.
    static let scannedRows: Int64 = 10_000
    static let sequentialScanMinimum: Int64 = 100

    /// What to do about `table`, most important first.
    static func recommendations(for table: TableFacts) -> [Recommendation] {
        var advice: [Recommendation] = []
        if !table.hasPrimaryKey {
            advice.append(.init(code: .noPrimaryKey, message: """
                \(table.schema).\(table.name) has no primary key: its rows cannot be told apart, so upserts, logical \
                replication and deduplication cannot work on it; add one
                """))
        }
        if table.deadTuples > deadMinimum && Double(table.deadTuples) > deadShare * Double(max(table.liveTuples, 1)) {
            let share = Int((Double(table.deadTuples) / Double(max(table.liveTuples, 1)) * 100).rounded())
            advice.append(.init(code: .vacuum, message: """
                \(table.deadTuples) dead row versions (\(share)% of the live rows): run VACUUM (ANALYZE) on it, or make \
                autovacuum visit it more often (autovacuum_vacuum_scale_factor)
                """))
        }
        if table.lastAnalyze == nil && table.lastAutoanalyze == nil && table.rows > 0 {
            advice.append(.init(code: .analyze, message: """
                statistics were never gathered for it: run ANALYZE, so the planner's row estimates stop being guesses
                """))
        }
        if table.rows >= scannedRows && table.sequentialScans >= sequentialScanMinimum && table.sequentialScans > 10 * table.indexScans {
            advice.append(.init(code: .sequentialScans, message: """
                \(table.sequentialScans) sequential scans against \(table.indexScans) index scans on about \(table.rows) rows: \
                queries probably filter on columns without an index; find them in pg_stat_statements and index those columns
                """))
        }
        for index in table.unusedIndexes {
            advice.append(.init(code: .unusedIndex, message: """
                index \(index.name) (\(index.bytes) bytes) has not been used since statistics were last reset: if that \
                covers a representative period, drop it to make writes cheaper
                """))
        }
        for key in table.unindexedForeignKeys {
            advice.append(.init(code: .unindexedForeignKey, message: """
                foreign key \(key.name) (\(key.columns.joined(separator: ", "))) has no index starting with its columns: \
                every delete or key update on the referenced table scans this one; create an index on them
                """))
        }
        return advice
    }
}
