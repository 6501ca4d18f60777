/// A decoded Redis reply (RESP2).
public enum RedisReply: Sendable, Equatable {
    /// A simple status such as `OK`.
    case status(String)
    /// An error reply; the first word is its kind (`ERR`, `BUSYGROUP`, `NOGROUP`, `WRONGTYPE`, ...).
    case error(String)
    /// An integer.
    case integer(Int64)
    /// A binary-safe bulk string.
    case bulk([UInt8])
    /// A null bulk string or null array.
    case null
    /// An array of replies.
    case array([RedisReply])

    /// The text of a status or bulk reply.
    public var string: String? {
        switch self {
        case .status(let text): text
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The bytes of a bulk reply.
    public var bytes: [UInt8]? {
        if case .bulk(let bytes) = self { return bytes }
        return nil
    }

    /// The value of an integer reply (or of a bulk reply holding digits).
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    /// The elements of an array reply.
    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// True for a null reply.
    public var isNull: Bool { self == .null }
}

/// A failure talking to Redis. `description` never contains command arguments.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Sendable, Equatable {
        /// Could not connect, or the connection broke (I/O error, EOF, timeout).
        case connectionFailure
        /// Redis answered with an error reply; the associated value is its first word (`NOGROUP`, `WRONGTYPE`...).
        case server(String)
        /// The reply did not have the expected shape.
        case unexpectedReply
    }

    /// What went wrong.
    public let code: Code
    /// A fixed explanation, or hiredis's I/O error text (which never holds arguments).
    public let reason: String

    /// Creates an error.
    public init(code: Code, reason: String) {
        self.code = code
        self.reason = reason
    }

    /// The error reply for `text`, keeping only its first word, because Redis quotes arguments in some
    /// messages (`unknown command ... with args beginning with ...`).
    public static func server(_ text: String) -> RedisError {
        let kind = text.split(separator: " ", maxSplits: 1).first.map(String.init) ?? "ERR"
        return RedisError(code: .server(kind), reason: "redis replied with an error")
    }

    public var description: String {
        switch code {
        case .connectionFailure: "RedisError(connection_failure: \(reason))"
        case .server(let kind): "RedisError(server: \(kind))"
        case .unexpectedReply: "RedisError(unexpected_reply: \(reason))"
        }
    }

    /// True when the connection that produced this error must be replaced.
    public var isConnectionLevel: Bool { code == .connectionFailure }
}
