/// The rows of a query result, with values in PostgreSQL's text format.
public struct PostgresRows: Sendable, Sequence {
    /// Column names in order.
    public let columns: [String]
    /// Column types in order: the type's OID and its modifier (`-1` for none), as `format_type(oid, modifier)` names them.
    public let columnTypes: [(oid: UInt32, modifier: Int32)]
    /// How many rows a command affected (`INSERT`, `UPDATE`, `DELETE`), or returned.
    public let affectedRows: Int
    let values: [[String?]]
    let columnIndex: [String: Int]

    init(columns: [String], columnTypes: [(oid: UInt32, modifier: Int32)] = [], values: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.columnTypes = columnTypes
        self.values = values
        self.affectedRows = affectedRows
        var index: [String: Int] = [:]
        for (position, name) in columns.enumerated() where index[name] == nil {
            index[name] = position
        }
        self.columnIndex = index
    }

    /// The number of rows.
    public var count: Int { values.count }

    /// The first row, if any.
    public var first: PostgresRow? { values.isEmpty ? nil : PostgresRow(rows: self, index: 0) }

    public func makeIterator() -> AnyIterator<PostgresRow> {
        var next = 0
        return AnyIterator {
            guard next < values.count else { return nil }
            defer { next += 1 }
            return PostgresRow(rows: self, index: next)
        }
    }
}

/// One row of a result.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    /// Decodes the named column.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let position = rows.columnIndex[column] else {
            throw PostgresDecodingError(T.self, column: column)
        }
        return try decode(at: position, as: type, column: column)
    }

    /// Decodes the column at a position.
    public func decode<T: PostgresDecodable>(at position: Int, as type: T.Type = T.self) throws -> T {
        guard position >= 0, position < rows.columns.count else { throw PostgresDecodingError(T.self) }
        return try decode(at: position, as: type, column: rows.columns[position])
    }

    /// True when the named column is SQL NULL.
    public func isNull(_ column: String) -> Bool {
        guard let position = rows.columnIndex[column] else { return true }
        return rows.values[index][position] == nil
    }

    private func decode<T: PostgresDecodable>(at position: Int, as type: T.Type, column: String) throws -> T {
        guard let text = rows.values[index][position] else {
            guard let null = T.postgresNull else { throw PostgresDecodingError(T.self, column: column) }
            return null
        }
        do {
            return try T(postgresText: text)
        } catch var error as PostgresDecodingError {
            error.column = column
            throw error
        }
    }
}
