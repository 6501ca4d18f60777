/// A SQL statement whose values travel as bound parameters, never spliced into the text.
///
/// Interpolated values become `$1`, `$2`, ...:
/// ```swift
/// let rows = try await db.query("SELECT id FROM users WHERE email = \(email) AND active = \(true)")
/// ```
/// Identifiers (schema, table, column names) go through ``PostgresIdentifier``, which validates and quotes them.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation {
    /// The statement text with `$n` placeholders.
    public private(set) var sql: String
    /// The values of the placeholders, in order; `nil` is SQL NULL.
    public private(set) var binds: [String?]

    /// Creates a query from text and already-encoded parameter values.
    public init(unsafeSQL sql: String, binds: [any PostgresEncodable] = []) {
        self.sql = sql
        self.binds = binds.map { $0.postgresText }
    }

    public init(stringLiteral value: String) {
        self.sql = value
        self.binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        self.sql = stringInterpolation.sql
        self.binds = stringInterpolation.binds
    }

    /// Builds the statement text and its parameters.
    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [String?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Binds a value as the next parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value.postgresText)
            sql += "$\(binds.count)"
        }

        /// Binds an optional value (`NULL` when absent). Spelled out so the compiler does not take it for the
        /// debug-description interpolation of `String` it warns about.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            binds.append(value.postgresText)
            sql += "$\(binds.count)"
        }

        /// Splices another query (a shared column list, a condition) into this one; its `$n` parameters are
        /// renumbered after the ones already bound.
        public mutating func appendInterpolation(_ fragment: PostgresQuery) {
            let offset = binds.count
            binds.append(contentsOf: fragment.binds)
            guard offset > 0, !fragment.binds.isEmpty else {
                sql += fragment.sql
                return
            }
            var text = Substring(fragment.sql)
            while let dollar = text.firstIndex(of: "$") {
                sql += text[..<dollar]
                let digits = text[text.index(after: dollar)...].prefix { $0.isASCII && $0.isNumber }
                if let number = Int(digits) {
                    sql += "$\(number + offset)"
                } else {
                    sql += "$"
                }
                text = text[text.index(dollar, offsetBy: 1 + digits.count)...]
            }
            sql += text
        }

        /// Splices a validated, quoted identifier into the text.
        public mutating func appendInterpolation(_ identifier: PostgresIdentifier) {
            sql += identifier.quoted
        }
    }
}

/// A schema, table or column name that is safe to splice into SQL: validated, then double-quoted.
public struct PostgresIdentifier: Sendable, Hashable, CustomStringConvertible {
    /// The name as the user gave it.
    public let name: String
    /// An optional schema qualifier.
    public let schema: String?

    /// Why a name was refused.
    public struct InvalidIdentifier: Error, Sendable, CustomStringConvertible {
        /// The refused name.
        public let name: String
        public var description: String { "invalid SQL identifier" }
    }

    /// Accepts names of 1–63 bytes without NUL; everything else is handled by quoting.
    public init(_ name: String, schema: String? = nil) throws {
        for part in [name] + (schema.map { [$0] } ?? []) {
            guard !part.isEmpty, part.utf8.count <= 63, !part.utf8.contains(0) else {
                throw InvalidIdentifier(name: part)
            }
        }
        self.name = name
        self.schema = schema
    }

    /// Parses `table` or `schema.table` (each part possibly double-quoted).
    public init(qualified: String) throws {
        let parts = qualified.split(separator: ".", maxSplits: 1).map {
            $0.hasPrefix("\"") && $0.hasSuffix("\"") && $0.count >= 2 ? String($0.dropFirst().dropLast()) : String($0)
        }
        if parts.count == 2 {
            try self.init(parts[1], schema: parts[0])
        } else {
            try self.init(qualified)
        }
    }

    /// The double-quoted form, with embedded quotes doubled.
    public var quoted: String {
        let quote: (String) -> String = { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        return schema.map { quote($0) + "." + quote(name) } ?? quote(name)
    }

    public var description: String { quoted }
}
