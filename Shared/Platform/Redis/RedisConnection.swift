internal import CHiredis
import Foundation
import NIOPosix
import Synchronization

/// Where Redis is. `description` leaves the password out.
public struct RedisConfiguration: Sendable, CustomStringConvertible {
    /// Host name or IP.
    public var host: String
    /// TCP port.
    public var port: Int
    /// `AUTH` password, if Redis requires one.
    public var password: String?
    /// Database index for `SELECT`.
    public var database: Int
    /// Connect and command timeout.
    public var timeout: Duration

    /// Creates a configuration.
    public init(host: String = "127.0.0.1", port: Int = 6379, password: String? = nil, database: Int = 0,
                timeout: Duration = .seconds(5)) {
        self.host = host
        self.port = port
        self.password = password
        self.database = database
        self.timeout = timeout
    }

    public var description: String { "redis://\(host):\(port)/\(database)" }
}

/// One hiredis connection. Its calls block: run them on a thread pool (``RedisClient`` and
/// ``StreamWorker`` do). Used by one task at a time.
public final class RedisConnection: PooledConnection, @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>
    private let closed = Atomic<Bool>(false)
    private let broken = Atomic<Bool>(false)

    private init(context: UnsafeMutablePointer<redisContext>) {
        self.context = context
    }

    deinit {
        if !closed.load(ordering: .acquiring) { redisFree(context) }
    }

    /// Connects (blocking), authenticates and selects the database.
    public static func connectBlocking(_ configuration: RedisConfiguration, commandTimeout: Duration? = nil)
        throws -> RedisConnection
    {
        let connectTimeout = timeval(configuration.timeout)
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), connectTimeout) else {
            throw RedisError(code: .connectionFailure, reason: "hiredis could not allocate a context")
        }
        if context.pointee.err != 0 {
            let reason = errorText(context)
            redisFree(context)
            throw RedisError(code: .connectionFailure, reason: reason)
        }
        redisSetTimeout(context, timeval(commandTimeout ?? configuration.timeout))
        let connection = RedisConnection(context: context)
        if let password = configuration.password {
            try connection.execute(["AUTH", password]).checked()
        }
        if configuration.database != 0 {
            try connection.execute(["SELECT", String(configuration.database)]).checked()
        }
        return connection
    }

    /// Sends one command (binary-safe arguments) and waits for its reply. Error replies are returned, not thrown.
    public func execute(_ arguments: [String]) throws -> RedisReply {
        try execute(bytes: arguments.map { Array($0.utf8) })
    }

    /// Sends one command with binary arguments and waits for its reply.
    public func execute(bytes arguments: [[UInt8]]) throws -> RedisReply {
        let reply = withArgv(arguments) { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        }
        return try take(reply)
    }

    /// Sends several commands in one round trip and returns their replies in order.
    public func pipeline(_ commands: [[[UInt8]]]) throws -> [RedisReply] {
        for arguments in commands {
            let status = withArgv(arguments) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            guard status == REDIS_OK else { throw ioError() }
        }
        return try commands.map { _ in
            var reply: UnsafeMutableRawPointer?
            guard redisGetReply(context, &reply) == REDIS_OK else { throw ioError() }
            return try take(reply)
        }
    }

    /// True until an I/O error, EOF or timeout has been seen, or the server has closed the idle socket.
    public var isReusable: Bool {
        !closed.load(ordering: .acquiring) && !broken.load(ordering: .acquiring) && context.pointee.err == 0
            && platform_redis_socket_readable(context) == 0
    }

    /// Frees the connection. Idempotent.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        redisFree(context)
    }

    private func take(_ pointer: UnsafeMutableRawPointer?) throws -> RedisReply {
        guard let pointer else { throw ioError() }
        defer { freeReplyObject(pointer) }
        return RedisReply(pointer.assumingMemoryBound(to: redisReply.self))
    }

    private func ioError() -> RedisError {
        broken.store(true, ordering: .releasing)
        return RedisError(code: .connectionFailure, reason: Self.errorText(context))
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "connection lost" : String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func timeval(_ duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    private func withArgv<R>(
        _ arguments: [[UInt8]],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        // One contiguous buffer holds every argument, so a command costs two allocations whatever its size.
        var storage = [UInt8]()
        storage.reserveCapacity(arguments.reduce(0) { $0 + $1.count } + arguments.count)
        var offsets: [Int] = []
        var lengths: [Int] = []
        for argument in arguments {
            offsets.append(storage.count)
            lengths.append(argument.count)
            storage.append(contentsOf: argument)
            storage.append(0)
        }
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(Int32(arguments.count), argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }
}

extension RedisReply {
    init(_ reply: UnsafeMutablePointer<redisReply>) {
        let value = reply.pointee
        func text() -> [UInt8] {
            guard let str = value.str else { return [] }
            return str.withMemoryRebound(to: UInt8.self, capacity: value.len) {
                Array(UnsafeBufferPointer(start: $0, count: value.len))
            }
        }
        switch value.type {
        case REDIS_REPLY_STATUS: self = .status(String(decoding: text(), as: UTF8.self))
        case REDIS_REPLY_ERROR: self = .error(String(decoding: text(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: self = .integer(Int64(value.integer))
        case REDIS_REPLY_STRING: self = .bulk(text())
        case REDIS_REPLY_ARRAY:
            self = .array((0..<value.elements).map { index in
                value.element[index].map { RedisReply($0) } ?? .null
            })
        default: self = .null
        }
    }

    /// Throws for an error reply, so callers can write `try connection.execute(...).checked()`.
    @discardableResult
    public func checked() throws -> RedisReply {
        if case .error(let text) = self { throw RedisError.server(text) }
        return self
    }

    /// Decodes raw RESP bytes with hiredis's own parser; `nil` when incomplete. Used to test decoding.
    public static func parse(resp bytes: [UInt8]) throws -> RedisReply? {
        guard let reader = redisReaderCreate() else {
            throw RedisError(code: .unexpectedReply, reason: "hiredis could not allocate a reader")
        }
        defer { redisReaderFree(reader) }
        let fed = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        guard fed == REDIS_OK else { throw RedisError(code: .unexpectedReply, reason: "reader refused input") }
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
            throw RedisError(code: .unexpectedReply, reason: "malformed RESP")
        }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return RedisReply(reply.assumingMemoryBound(to: redisReply.self))
    }
}
