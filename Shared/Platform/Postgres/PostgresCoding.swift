import Foundation

/// A Swift value that can be sent as a query parameter, in PostgreSQL's text format.
public protocol PostgresEncodable: Sendable {
    /// The text form of the value, or `nil` for SQL NULL.
    var postgresText: String? { get }
}

/// A Swift value that can be read from a result column in PostgreSQL's text format.
public protocol PostgresDecodable: Sendable {
    /// Parses the text form of a non-NULL value.
    init(postgresText: String) throws
    /// What a SQL NULL decodes to; `nil` means NULL is not acceptable for this type.
    static var postgresNull: Self? { get }
}

extension PostgresDecodable {
    public static var postgresNull: Self? { nil }
}

/// A value that could not be decoded into the requested Swift type.
public struct PostgresDecodingError: Error, Sendable, CustomStringConvertible {
    /// The Swift type asked for.
    public let type: String
    /// The column, when known.
    public var column: String?
    public var description: String { "cannot decode \(column.map { "column \($0)" } ?? "value") as \(type)" }

    /// A value of `type` (in `column`) could not be decoded.
    public init(_ type: Any.Type, column: String? = nil) {
        self.type = String(describing: type)
        self.column = column
    }
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self }
    public init(postgresText: String) { self = postgresText }
}

extension Substring: PostgresEncodable {
    public var postgresText: String? { String(self) }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self ? "t" : "f" }
    public init(postgresText: String) throws {
        switch postgresText {
        case "t", "true", "TRUE", "1", "on", "yes": self = true
        case "f", "false", "FALSE", "0", "off", "no": self = false
        default: throw PostgresDecodingError(Bool.self)
        }
    }
}

/// Integers are decoded with a range check, so a `bigint` too large for `Int32` fails instead of wrapping.
public protocol PostgresInteger: FixedWidthInteger, PostgresEncodable, PostgresDecodable {}

extension PostgresInteger {
    public var postgresText: String? { String(self) }
    public init(postgresText: String) throws {
        guard let value = Self(postgresText) else { throw PostgresDecodingError(Self.self) }
        self = value
    }
}

extension Int: PostgresInteger {}
extension Int64: PostgresInteger {}
extension Int32: PostgresInteger {}
extension Int16: PostgresInteger {}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return String(self)
    }
    public init(postgresText: String) throws {
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let value = Double(postgresText) else { throw PostgresDecodingError(Double.self) }
            self = value
        }
    }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { uuidString.lowercased() }
    public init(postgresText: String) throws {
        guard let value = UUID(uuidString: postgresText) else { throw PostgresDecodingError(UUID.self) }
        self = value
    }
}

extension Date: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { PostgresTimestamp.format(self) }
    public init(postgresText: String) throws {
        guard let value = PostgresTimestamp.parse(postgresText) else { throw PostgresDecodingError(Date.self) }
        self = value
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText: String) throws { self = try Wrapped(postgresText: postgresText) }
    public static var postgresNull: Self? { .some(.none) }
}

extension Array: PostgresEncodable where Element == String {
    /// A text array literal: every element quoted, quotes and backslashes escaped.
    public var postgresText: String? {
        "{" + map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}"
    }
}

extension Array: PostgresDecodable where Element == String {
    public init(postgresText: String) throws {
        guard let elements = PostgresArrayLiteral.parse(postgresText), !elements.contains(where: { $0 == nil }) else {
            throw PostgresDecodingError([String].self)
        }
        self = elements.map { $0! }
    }
}

/// A `json`/`jsonb` value carrying any `Codable` Swift value.
public struct PostgresJSON<Value: Codable & Sendable>: PostgresEncodable, PostgresDecodable {
    /// The decoded value.
    public var value: Value

    /// Wraps a value to be sent as JSON.
    public init(_ value: Value) {
        self.value = value
    }

    public var postgresText: String? {
        (try? JSONEncoder.platform.encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }

    public init(postgresText: String) throws {
        do {
            self.value = try JSONDecoder.platform.decode(Value.self, from: Data(postgresText.utf8))
        } catch {
            throw PostgresDecodingError(Value.self)
        }
    }
}

/// A `bytea` value.
public struct PostgresBytes: PostgresEncodable, PostgresDecodable, Equatable {
    /// The raw bytes.
    public var bytes: [UInt8]

    /// Wraps bytes to be sent as `bytea`.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var postgresText: String? {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8](repeating: 0, count: 2 + bytes.count * 2)
        text[0] = UInt8(ascii: "\\")
        text[1] = UInt8(ascii: "x")
        for (index, byte) in bytes.enumerated() {
            text[2 + index * 2] = digits[Int(byte >> 4)]
            text[3 + index * 2] = digits[Int(byte & 0x0f)]
        }
        return String(decoding: text, as: UTF8.self)
    }

    public init(postgresText: String) throws {
        let utf8 = Array(postgresText.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else {
            throw PostgresDecodingError(PostgresBytes.self)
        }
        func nibble(_ c: UInt8) throws -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: throw PostgresDecodingError(PostgresBytes.self)
            }
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            bytes.append(try nibble(utf8[index]) << 4 | nibble(utf8[index + 1]))
            index += 2
        }
        self.bytes = bytes
    }
}

extension JSONEncoder {
    /// The platform's JSON encoding everywhere (HTTP bodies, stream payloads, json columns): ISO 8601 dates,
    /// sorted keys.
    public static var platform: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension JSONDecoder {
    /// The counterpart of ``JSONEncoder/platform``.
    public static var platform: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
