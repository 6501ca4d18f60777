import Foundation
import Logging
import NIOPosix
import ServiceLifecycle

/// How a ``StreamWorker`` consumes its stream.
public struct StreamWorkerConfiguration: Sendable {
    /// Where to create the group when it does not exist yet.
    public enum Start: String, Sendable {
        /// Deliver every entry still in the stream (no work published before the group existed is lost).
        case beginning = "0"
        /// Deliver only entries added from now on.
        case latest = "$"
    }

    /// The stream to read.
    public var stream: String
    /// The consumer group shared by all replicas.
    public var group: String
    /// This replica's consumer name, unique within the group.
    public var consumer: String
    /// Most entries read per `XREADGROUP`.
    public var batchSize: Int
    /// Most handlers running at once.
    public var concurrency: Int
    /// How long `XREADGROUP` blocks waiting for entries.
    public var blockTime: Duration
    /// An entry unacknowledged this long is claimed again by any consumer (`XAUTOCLAIM`).
    public var visibilityTimeout: Duration
    /// How often to look for abandoned entries.
    public var reclaimInterval: Duration
    /// After this many deliveries an entry moves to the dead-letter stream.
    public var maxDeliveries: Int
    /// Where entries that keep failing go.
    public var deadLetterStream: String
    /// Where a new group starts.
    public var start: Start

    /// Creates a configuration with sensible defaults.
    public init(
        stream: String, group: String, consumer: String, batchSize: Int = 100, concurrency: Int = 16,
        blockTime: Duration = .seconds(1), visibilityTimeout: Duration = .seconds(60),
        reclaimInterval: Duration? = nil, maxDeliveries: Int = 5, deadLetterStream: String? = nil,
        start: Start = .beginning
    ) {
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.batchSize = batchSize
        self.concurrency = concurrency
        self.blockTime = blockTime
        self.visibilityTimeout = visibilityTimeout
        self.reclaimInterval = reclaimInterval ?? visibilityTimeout / 2
        self.maxDeliveries = maxDeliveries
        self.deadLetterStream = deadLetterStream ?? "\(stream):dead-letter"
        self.start = start
    }
}

/// Counts what a worker did, for metrics.
public struct StreamWorkerObserver: Sendable {
    /// Entries handled and acknowledged.
    public var onProcessed: @Sendable (Int) -> Void
    /// Entries whose handler threw (they stay pending and are retried after the visibility timeout).
    public var onFailed: @Sendable (Int) -> Void
    /// Entries moved to the dead-letter stream.
    public var onDeadLettered: @Sendable (Int) -> Void

    /// Creates an observer.
    public init(
        onProcessed: @escaping @Sendable (Int) -> Void = { _ in },
        onFailed: @escaping @Sendable (Int) -> Void = { _ in },
        onDeadLettered: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.onProcessed = onProcessed
        self.onFailed = onFailed
        self.onDeadLettered = onDeadLettered
    }
}

/// Consumes a stream through a consumer group: at-least-once delivery across any number of replicas.
///
/// It reads with `XREADGROUP ... BLOCK` on a connection and thread of its own, runs handlers with bounded
/// concurrency, acknowledges after success, claims entries abandoned by dead consumers with `XAUTOCLAIM`,
/// moves entries delivered `maxDeliveries` times to a dead-letter stream, and reconnects with back-off when
/// Redis goes away. Handlers must be idempotent.
public final class StreamWorker: Service, Sendable {
    /// What and how it consumes.
    public let configuration: StreamWorkerConfiguration
    private let redis: RedisConfiguration
    private let handler: @Sendable (StreamEntry) async throws -> Void
    private let observer: StreamWorkerObserver
    private let logger: Logger

    /// Creates a worker that passes each entry to `handler`.
    public init(
        configuration: StreamWorkerConfiguration, redis: RedisConfiguration, logger: Logger,
        observer: StreamWorkerObserver = StreamWorkerObserver(),
        handler: @escaping @Sendable (StreamEntry) async throws -> Void
    ) {
        self.configuration = configuration
        self.redis = redis
        self.handler = handler
        self.observer = observer
        var logger = logger
        logger[metadataKey: "stream"] = "\(configuration.stream)"
        logger[metadataKey: "consumer"] = "\(configuration.consumer)"
        self.logger = logger
    }

    /// Consumes until graceful shutdown; the batch in flight is finished and acknowledged first.
    public func run() async throws {
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        defer { threadPool.shutdownGracefully { _ in } }
        var session: Session?
        var backoff = Duration.milliseconds(100)
        var lastReclaim = ContinuousClock.now - configuration.reclaimInterval
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                if session == nil {
                    let connected = try await Session.open(redis, configuration: configuration, threadPool: threadPool)
                    try await connected.ensureGroup()
                    session = connected
                    backoff = .milliseconds(100)
                }
                guard let session else { continue }
                if ContinuousClock.now - lastReclaim >= configuration.reclaimInterval {
                    lastReclaim = .now
                    try await process(try await reclaim(session), session: session)
                }
                try await process(try await session.readNew(), session: session)
            } catch let error as RedisError where error.code == .server("NOGROUP") {
                // The stream or group vanished (Redis restarted without persistence): create it again.
                logger.warning("consumer group missing; recreating it")
                try? await session?.ensureGroup()
            } catch {
                if Task.isCancelled { break }
                logger.warning("stream worker lost redis; reconnecting", metadata: ["error": "\(error)", "backoff": "\(backoff)"])
                session?.connection.close()
                session = nil
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        session?.connection.close()
    }

    /// Moves over-delivered entries to the dead-letter stream, then claims the rest of the abandoned ones.
    private func reclaim(_ session: Session) async throws -> [StreamEntry] {
        let idle = String(configuration.visibilityTimeout.wholeMilliseconds)
        let pending = try StreamCommands.pendingReply(try await session.execute([
            "XPENDING", configuration.stream, configuration.group, "IDLE", idle, "-", "+", String(configuration.batchSize),
        ]))
        let exhausted = pending.filter { $0.deliveries >= Int64(configuration.maxDeliveries) }
        for entry in exhausted {
            let found = try await session.execute(["XRANGE", configuration.stream, entry.id, entry.id])
            var fields = found.array?.first.flatMap(StreamCommands.entry)?.fields ?? []
            fields += [("dead_letter_source_id", Array(entry.id.utf8)),
                       ("dead_letter_deliveries", Array(String(entry.deliveries).utf8))]
            try await session.execute(bytes: StreamCommands.xadd(
                stream: configuration.deadLetterStream, fields: fields, maxLength: 100_000))
            try await session.execute(["XACK", configuration.stream, configuration.group, entry.id])
            logger.error("entry moved to dead-letter stream", metadata: ["entry": "\(entry.id)", "deliveries": "\(entry.deliveries)"])
        }
        if !exhausted.isEmpty { observer.onDeadLettered(exhausted.count) }
        let claimed = try StreamCommands.autoClaimReply(try await session.execute([
            "XAUTOCLAIM", configuration.stream, configuration.group, configuration.consumer, idle, "0-0",
            "COUNT", String(configuration.batchSize),
        ]))
        if !claimed.entries.isEmpty {
            logger.info("claimed abandoned entries", metadata: ["count": "\(claimed.entries.count)"])
        }
        return claimed.entries
    }

    /// Runs the handler on each entry, at most `concurrency` at once, then acknowledges the successes together.
    private func process(_ entries: [StreamEntry], session: Session) async throws {
        guard !entries.isEmpty else { return }
        let limit = max(1, configuration.concurrency)
        let succeeded = await withTaskGroup(of: String?.self) { group in
            var succeeded: [String] = []
            var running = 0
            for entry in entries {
                if running >= limit, let done = await group.next() {
                    running -= 1
                    if let done { succeeded.append(done) }
                }
                running += 1
                group.addTask { [handler, logger] in
                    do {
                        try await handler(entry)
                        return entry.id
                    } catch {
                        logger.warning("stream handler failed; entry stays pending", metadata: ["entry": "\(entry.id)", "error": "\(error)"])
                        return nil
                    }
                }
            }
            for await done in group {
                if let done { succeeded.append(done) }
            }
            return succeeded
        }
        if !succeeded.isEmpty {
            try await session.execute(["XACK", configuration.stream, configuration.group] + succeeded)
            observer.onProcessed(succeeded.count)
        }
        if succeeded.count < entries.count { observer.onFailed(entries.count - succeeded.count) }
    }

    /// The worker's own connection and thread: a blocking read never holds anyone else's.
    private struct Session: Sendable {
        let connection: RedisConnection
        let threadPool: NIOThreadPool
        let configuration: StreamWorkerConfiguration

        static func open(
            _ redis: RedisConfiguration, configuration: StreamWorkerConfiguration, threadPool: NIOThreadPool
        ) async throws -> Session {
            let connection = try await threadPool.runIfActive {
                try RedisConnection.connectBlocking(redis, commandTimeout: configuration.blockTime + redis.timeout)
            }
            return Session(connection: connection, threadPool: threadPool, configuration: configuration)
        }

        @discardableResult
        func execute(_ arguments: [String]) async throws -> RedisReply {
            try await execute(bytes: arguments.map { Array($0.utf8) })
        }

        @discardableResult
        func execute(bytes arguments: [[UInt8]]) async throws -> RedisReply {
            try await threadPool.runIfActive { [connection] in try connection.execute(bytes: arguments).checked() }
        }

        func ensureGroup() async throws {
            do {
                try await execute(["XGROUP", "CREATE", configuration.stream, configuration.group,
                                   configuration.start.rawValue, "MKSTREAM"])
            } catch let error as RedisError where error.code == .server("BUSYGROUP") {
                return
            }
        }

        func readNew() async throws -> [StreamEntry] {
            let block = configuration.blockTime.wholeMilliseconds
            return try StreamCommands.readReply(try await execute([
                "XREADGROUP", "GROUP", configuration.group, configuration.consumer,
                "COUNT", String(configuration.batchSize), "BLOCK", String(max(1, block)),
                "STREAMS", configuration.stream, ">",
            ]))
        }
    }
}
