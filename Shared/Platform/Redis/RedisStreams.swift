import Foundation
import SharedModels

/// One entry read from a Redis stream.
public struct StreamEntry: Sendable, Equatable {
    /// The entry id (`1700000000000-0`).
    public let id: String
    /// Field/value pairs in the order they were written.
    public let fields: [(String, [UInt8])]

    /// Creates an entry.
    public init(id: String, fields: [(String, [UInt8])]) {
        self.id = id
        self.fields = fields
    }

    /// The value of a field.
    public subscript(field: String) -> [UInt8]? {
        fields.first { $0.0 == field }?.1
    }

    /// The `type` tag written by ``StreamCodec``.
    public var eventType: String? { self["type"].map { String(decoding: $0, as: UTF8.self) } }

    /// Decodes the typed payload written by ``StreamCodec``.
    public func decode<Event: StreamEvent>(_ type: Event.Type = Event.self) throws -> Event {
        guard let payload = self["payload"] else {
            throw RedisError(code: .unexpectedReply, reason: "stream entry has no payload")
        }
        return try StreamCodec.decoder.decode(Event.self, from: Data(payload))
    }

    public static func == (lhs: StreamEntry, rhs: StreamEntry) -> Bool {
        lhs.id == rhs.id && lhs.fields.elementsEqual(rhs.fields) { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}

/// How typed events are laid out in stream entries: a `type` field and a JSON `payload` field
/// (snake_case keys, as the models declare them).
public enum StreamCodec {
    static let encoder = JSONEncoder.platform
    static let decoder = JSONDecoder.platform

    /// The entry fields of an event.
    public static func fields(of event: some StreamEvent) throws -> [(String, [UInt8])] {
        [("type", Array(event.eventType.utf8)), ("payload", Array(try encoder.encode(event)))]
    }
}

/// Builders and parsers of the stream commands, shared by the publisher and the worker.
public enum StreamCommands {
    /// `XADD stream [MAXLEN ~ n] * field value ...`
    public static func xadd(stream: String, fields: [(String, [UInt8])], maxLength: Int?) -> [[UInt8]] {
        var arguments: [[UInt8]] = [Array("XADD".utf8), Array(stream.utf8)]
        if let maxLength {
            arguments += [Array("MAXLEN".utf8), Array("~".utf8), Array(String(maxLength).utf8)]
        }
        arguments.append(Array("*".utf8))
        for (field, value) in fields {
            arguments.append(Array(field.utf8))
            arguments.append(value)
        }
        return arguments
    }

    /// Parses an `[id, [field, value, ...]]` array.
    public static func entry(_ reply: RedisReply) -> StreamEntry? {
        guard let parts = reply.array, parts.count == 2, let id = parts[0].string else { return nil }
        guard let flat = parts[1].array else { return nil }
        var fields: [(String, [UInt8])] = []
        fields.reserveCapacity(flat.count / 2)
        var index = 0
        while index + 1 < flat.count {
            fields.append((flat[index].string ?? "", flat[index + 1].bytes ?? []))
            index += 2
        }
        return StreamEntry(id: id, fields: fields)
    }

    /// Parses the reply of `XREADGROUP`/`XREAD` for one stream: null (timeout) is no entries.
    public static func readReply(_ reply: RedisReply) throws -> [StreamEntry] {
        if reply.isNull { return [] }
        guard let streams = reply.array else { throw RedisError(code: .unexpectedReply, reason: "XREADGROUP") }
        var entries: [StreamEntry] = []
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, let list = pair[1].array else {
                throw RedisError(code: .unexpectedReply, reason: "XREADGROUP stream")
            }
            // A pending entry deleted from the stream comes back as [id, nil]; it has nothing to process.
            entries += list.compactMap(entry)
        }
        return entries
    }

    /// Parses `XAUTOCLAIM`: `[next-cursor, [entries], [deleted ids]]` (Redis 7).
    public static func autoClaimReply(_ reply: RedisReply) throws -> (cursor: String, entries: [StreamEntry], deleted: [String]) {
        guard let parts = reply.array, parts.count >= 2, let cursor = parts[0].string, let list = parts[1].array else {
            throw RedisError(code: .unexpectedReply, reason: "XAUTOCLAIM")
        }
        let deleted = parts.count > 2 ? (parts[2].array ?? []).compactMap(\.string) : []
        return (cursor, list.compactMap(entry), deleted)
    }

    /// One row of the extended `XPENDING` form.
    public struct PendingEntry: Sendable, Equatable {
        /// Entry id.
        public let id: String
        /// Consumer holding it.
        public let consumer: String
        /// Milliseconds since it was last delivered.
        public let idleMilliseconds: Int64
        /// How many times it has been delivered.
        public let deliveries: Int64

        /// Creates a row.
        public init(id: String, consumer: String, idleMilliseconds: Int64, deliveries: Int64) {
            self.id = id
            self.consumer = consumer
            self.idleMilliseconds = idleMilliseconds
            self.deliveries = deliveries
        }
    }

    /// Parses the extended `XPENDING stream group [IDLE ms] start end count` reply.
    public static func pendingReply(_ reply: RedisReply) throws -> [PendingEntry] {
        guard let rows = reply.array else { throw RedisError(code: .unexpectedReply, reason: "XPENDING") }
        return try rows.map { row in
            guard let parts = row.array, parts.count == 4, let id = parts[0].string, let consumer = parts[1].string,
                let idle = parts[2].int, let deliveries = parts[3].int
            else { throw RedisError(code: .unexpectedReply, reason: "XPENDING row") }
            return PendingEntry(id: id, consumer: consumer, idleMilliseconds: idle, deliveries: deliveries)
        }
    }
}

/// Publishes typed events to the platform streams.
public struct StreamPublisher: Sendable {
    private let redis: RedisClient
    /// Streams are trimmed to about this many entries (`MAXLEN ~`).
    public let maxLength: Int

    /// Creates a publisher.
    public init(redis: RedisClient, maxLength: Int = 1_000_000) {
        self.redis = redis
        self.maxLength = maxLength
    }

    /// Appends one event to its stream and returns the entry id.
    @discardableResult
    public func publish(_ event: some StreamEvent) async throws -> String {
        let reply = try await redis.execute(bytes: StreamCommands.xadd(
            stream: type(of: event).stream.rawValue, fields: try StreamCodec.fields(of: event), maxLength: maxLength))
        guard let id = reply.string else { throw RedisError(code: .unexpectedReply, reason: "XADD") }
        return id
    }

    /// Appends events of one type to their stream in one round trip; returns the entry ids.
    @discardableResult
    public func publish<Event: StreamEvent>(all events: [Event]) async throws -> [String] {
        guard !events.isEmpty else { return [] }
        return try await append(stream: Event.stream.rawValue, entries: events.map { try StreamCodec.fields(of: $0) })
    }

    /// Appends raw fields to any stream (one round trip for the whole batch) and returns the ids.
    @discardableResult
    public func append(stream: String, entries: [[(String, [UInt8])]]) async throws -> [String] {
        let replies = try await redis.pipeline(entries.map {
            StreamCommands.xadd(stream: stream, fields: $0, maxLength: maxLength)
        })
        return try replies.map { reply in
            try reply.checked()
            guard let id = reply.string else { throw RedisError(code: .unexpectedReply, reason: "XADD") }
            return id
        }
    }
}
