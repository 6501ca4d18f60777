import Foundation
import Platform
import SharedModels

extension CustomerDatabases {
    /// Runs `body` on a new connection to the run's database, inside one transaction that is read-only unless
    /// `readOnly` is false, with every statement bounded by `statementTimeout`. The statements the platform sends
    /// before `body` (the transaction's mode and the timeout) make a later `SET TRANSACTION READ WRITE` fail.
    func inspect<T: Sendable>(_ run: Run, readOnly: Bool = true, statementTimeout: Duration,
                              _ body: (PostgresConnection) async throws -> T) async throws -> T {
        guard let id = run.connectionID else { throw RunFailure(.validationError, "the \(run.kind.rawValue) job names no connection_id") }
        let connection = try await connect(id)
        defer { connection.close() }
        do {
            try await connection.query(readOnly ? "BEGIN READ ONLY" : "BEGIN")
            try await connection.limitStatements(to: statementTimeout)
            let result = try await body(connection)
            try await connection.query("COMMIT")
            return result
        } catch let error as PostgresError {
            throw RunFailure(.databaseError, CustomerDatabases.message(for: error))
        }
    }
}

extension PostgresConnection {
    /// Bounds every statement of the current transaction by `timeout` (again, should a statement have changed it).
    func limitStatements(to timeout: Duration) async throws {
        try await query(PostgresQuery(unsafeSQL: "SELECT set_config('statement_timeout', $1, true)", binds: ["\(timeout.components.seconds * 1000)"]))
    }

    /// The names of result column types as `format_type` writes them (`numeric(12,2)`, `timestamp with time zone`).
    func typeNames(of rows: PostgresRows) async throws -> [String] {
        guard !rows.columnTypes.isEmpty else { return [] }
        return try await query(PostgresQuery(unsafeSQL: """
            SELECT format_type(t.oid::oid, t.modifier::integer) AS type
            FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(oid, modifier, position) ORDER BY t.position
            """, binds: [rows.columnTypes.map { String($0.oid) }, rows.columnTypes.map { String($0.modifier) }]))
            .map { try $0.decode("type", as: String.self) }
    }
}

extension JSONValue {
    /// `value` as JSON, with snake_case keys and ISO 8601 dates: how runs keep what a job found.
    init(encoding value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        self = try JSONDecoder().decode(JSONValue.self, from: encoder.encode(value))
    }

    /// A PostgreSQL value in text format as JSON: booleans and integers as themselves, exact numerics as strings
    /// (a JSON number would round them), JSON as JSON, everything else as its text.
    init(postgresText text: String?, type oid: UInt32) {
        guard let text else {
            self = .null
            return
        }
        switch oid {
        case 16: self = .bool(text == "t")
        case 20, 21, 23, 26:
            if let number = Int64(text), number.magnitude < 1 << 53 { self = .number(Double(number)) } else { self = .string(text) }
        case 700, 701:
            if let number = Double(text), number.isFinite { self = .number(number) } else { self = .string(text) }
        case 114, 3802: self = (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .string(text)
        default: self = .string(text)
        }
    }
}

/// Statement texts read from another session's view of the database (`pg_stat_activity`) can hold secrets
/// written as literals (`ALTER ROLE ... PASSWORD '...'`): their string literals are blanked before they are kept.
enum StatementText {
    /// `text` with the contents of every quoted string (`'...'`, `E'...'`, `$tag$...$tag$`) replaced by `?`, cut
    /// to `limit` characters.
    static func redacted(_ text: String, limit: Int = 2_000) -> String {
        let scalars = Array(text.unicodeScalars)
        var output = String.UnicodeScalarView()
        var index = 0
        func isWordCharacter(_ position: Int) -> Bool {
            position >= 0 && (scalars[position].properties.isAlphabetic || ("0"..."9").contains(scalars[position]) || scalars[position] == "_")
        }
        /// The index just past the next `close` at or after `from` (the end when there is none).
        func past(_ close: String, from: Int) -> Int {
            let pattern = Array(close.unicodeScalars)
            var position = from
            while position + pattern.count <= scalars.count {
                if Array(scalars[position..<position + pattern.count]) == pattern { return position + pattern.count }
                position += 1
            }
            return scalars.count
        }
        while index < scalars.count {
            let scalar = scalars[index]
            let next = index + 1 < scalars.count ? scalars[index + 1] : nil
            if scalar == "\"" {
                // A quoted identifier, kept as it is ("" inside it is an escaped quote).
                var end = index + 1
                while end < scalars.count {
                    if scalars[end] == "\"" {
                        if end + 1 < scalars.count && scalars[end + 1] == "\"" { end += 2; continue }
                        break
                    }
                    end += 1
                }
                output.append(contentsOf: scalars[index..<min(end + 1, scalars.count)])
                index = end + 1
            } else if scalar == "-" && next == "-" {
                // A comment to the end of the line: it may say anything, so it is blanked too.
                output.append(contentsOf: "--?".unicodeScalars)
                index = past("\n", from: index)
                if index <= scalars.count, index > 0, scalars[index - 1] == "\n" { output.append("\n") }
            } else if scalar == "/" && next == "*" {
                var depth = 0
                var position = index
                while position < scalars.count {
                    if scalars[position] == "/", position + 1 < scalars.count, scalars[position + 1] == "*" { depth += 1; position += 2; continue }
                    if scalars[position] == "*", position + 1 < scalars.count, scalars[position + 1] == "/" {
                        depth -= 1
                        position += 2
                        if depth == 0 { break }
                        continue
                    }
                    position += 1
                }
                output.append(contentsOf: "/*?*/".unicodeScalars)
                index = position
            } else if scalar == "'" {
                // A string literal: '' inside it is an escaped quote; an E'' string (E standing alone before the
                // quote) also escapes with a backslash.
                let escapes = index > 0 && (scalars[index - 1] == "E" || scalars[index - 1] == "e") && !isWordCharacter(index - 2)
                index += 1
                while index < scalars.count {
                    if escapes && scalars[index] == "\\" { index += 2; continue }
                    if scalars[index] == "'" {
                        if index + 1 < scalars.count && scalars[index + 1] == "'" { index += 2; continue }
                        break
                    }
                    index += 1
                }
                output.append(contentsOf: "'?'".unicodeScalars)
                index += 1
            } else if scalar == "$", !isWordCharacter(index - 1), let tag = dollarTag(in: scalars, at: index) {
                output.append(contentsOf: tag)
                output.append("?")
                output.append(contentsOf: tag)
                index = past(String(String.UnicodeScalarView(tag)), from: index + tag.count)
            } else {
                output.append(scalar)
                index += 1
            }
        }
        let result = String(output)
        return result.count > limit ? String(result.prefix(limit)) + "…" : result
    }

    /// The `$tag$` opening a dollar-quoted string at `index`, if one does (`$1` is a parameter, not a tag).
    private static func dollarTag(in scalars: [Unicode.Scalar], at index: Int) -> [Unicode.Scalar]? {
        var end = index + 1
        while end < scalars.count, scalars[end] == "_" || scalars[end].properties.isAlphabetic || (end > index + 1 && ("0"..."9").contains(scalars[end])) {
            end += 1
        }
        guard end < scalars.count, scalars[end] == "$" else { return nil }
        return Array(scalars[index...end])
    }
}
