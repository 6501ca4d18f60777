import Logging
import NIOPosix
import ServiceLifecycle

/// The pooled Redis client of a service. A ServiceLifecycle `Service`.
///
/// Commands run on the client's own threads. Single commands and pipelines are pipelined automatically with
/// those of concurrent callers on one connection (``RedisCommandBatcher``); `withConnection` leases a pooled
/// connection of its own (for blocking commands and multi-step work). A connection that saw an I/O error is
/// dropped and the next command opens a fresh one, so the client survives Redis restarts.
public final class RedisClient: Service, Sendable {
    /// Where Redis is.
    public let configuration: RedisConfiguration
    /// The connection pool.
    public let pool: ConnectionPool<RedisConnection>
    private let threadPool: NIOThreadPool
    private let batcher: RedisCommandBatcher
    private let logger: Logger

    /// Creates the client; no connection is opened until the first command.
    public init(
        configuration: RedisConfiguration, maxConnections: Int = 4, logger: Logger,
        observer: ConnectionPoolObserver = ConnectionPoolObserver()
    ) {
        // One more thread than connections: the batcher's round trips run beside a full pool.
        let threadPool = NIOThreadPool(numberOfThreads: maxConnections + 1)
        threadPool.start()
        self.batcher = RedisCommandBatcher(threadPool: threadPool) { try RedisConnection.connectBlocking(configuration) }
        self.threadPool = threadPool
        self.configuration = configuration
        self.logger = logger
        self.pool = ConnectionPool(name: "redis", maxConnections: maxConnections, observer: observer) {
            try await threadPool.runIfActive { try RedisConnection.connectBlocking(configuration) }
        }
    }

    /// Serves the pool until graceful shutdown, then closes it and stops the threads.
    public func run() async throws {
        logger.info("redis pool started", metadata: ["redis": "\(configuration)", "size": "\(pool.maxConnections)"])
        await cancelWhenGracefulShutdown {
            await self.pool.run()
        }
        pool.close()
        batcher.close()
        try await threadPool.shutdownGracefully()
    }

    /// Runs one command; an error reply is thrown as ``RedisError``.
    @discardableResult
    public func execute(_ arguments: [String]) async throws -> RedisReply {
        try await execute(bytes: arguments.map { Array($0.utf8) })
    }

    /// Runs one command with binary arguments; an error reply is thrown as ``RedisError``.
    @discardableResult
    public func execute(bytes arguments: [[UInt8]]) async throws -> RedisReply {
        try await batcher.submit([arguments])[0].checked()
    }

    /// Runs several commands in one round trip; error replies are returned in place, not thrown.
    public func pipeline(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        try await batcher.submit(commands)
    }

    /// Leases a connection and runs blocking `work` with it on the client's threads.
    public func withConnection<T: Sendable>(
        _ work: @escaping @Sendable (RedisConnection) throws -> T
    ) async throws -> T {
        try await pool.withConnection { connection in
            try await threadPool.runIfActive { try work(connection) }
        }
    }
}
