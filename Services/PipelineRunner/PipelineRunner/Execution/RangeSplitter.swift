import Foundation

/// A run of the source table's blocks, copied by one connection: rows whose `ctid` lies in `[start, end)` (to the
/// table's end when `end` is `nil`, which also takes rows in blocks the table grew by after it was measured).
struct BlockRange: Sendable, Equatable {
    var start: Int64
    var end: Int64?

    /// The condition on the table's rows (PostgreSQL 14+ reads only these blocks: a TID range scan). Only numbers
    /// the engine computed go into it.
    var condition: String {
        let lower = "ctid >= '(\(start),0)'::tid"
        return end.map { "\(lower) AND ctid < '(\($0),0)'::tid" } ?? lower
    }
}

/// Splits a whole-table copy into block ranges for parallel connections, and says when a pipeline may be split.
/// Pure: the engine gives it the table's size in blocks.
enum RangeSplitter {
    /// The most connections one target copies with.
    static let maximumParts = 16
    /// Ranges smaller than this many blocks (8 MiB of 8 KiB blocks) are not worth a connection.
    static let minimumBlocksPerPart: Int64 = 1_024

    /// At most `parts` ranges of about equal size covering `[0, blocks)`, the last one open-ended; one range (the
    /// whole table) for a small table.
    static func ranges(blocks: Int64, parts: Int) -> [BlockRange] {
        let count = Int(max(1, min(Int64(min(max(parts, 1), maximumParts)), blocks / minimumBlocksPerPart)))
        guard count > 1 else { return [BlockRange(start: 0, end: nil)] }
        let size = (blocks + Int64(count) - 1) / Int64(count)
        return (0..<count).map { index in
            BlockRange(start: Int64(index) * size, end: index == count - 1 ? nil : Int64(index + 1) * size)
        }
    }

    /// Whether a pipeline's rows can be copied in ranges of its source table: a table source, and only steps that
    /// work row by row (a filter, select, derive or cast), so each range's result is the result of its rows.
    static func canSplit(_ specification: PipelineSpecification) -> Bool {
        guard specification.sources.first?.config.table != nil else { return false }
        return specification.transformations.allSatisfy { step in
            switch step.transformation {
            case .filter, .select, .derive, .cast: true
            case .aggregate, .deduplicate, .sql: false
            }
        }
    }
}
