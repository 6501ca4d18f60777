import Logging
import NIOPosix
import ServiceLifecycle

extension PostgresConnection: PooledConnection {}

/// The pooled PostgreSQL client a service uses for its own schema. A ServiceLifecycle `Service`.
///
/// It owns a thread pool with one thread per connection, so blocking libpq calls never wait for each
/// other or for anything else that blocks.
public final class PostgresClient: Service, Sendable {
    /// What it connects to.
    public let configuration: PostgresConfiguration
    /// The connection pool.
    public let pool: ConnectionPool<PostgresConnection>
    private let threadPool: NIOThreadPool
    private let logger: Logger

    /// Creates the client; no connection is opened until the first query.
    public init(
        configuration: PostgresConfiguration, maxConnections: Int, acquireTimeout: Duration = .seconds(10),
        logger: Logger, observer: ConnectionPoolObserver = ConnectionPoolObserver()
    ) {
        let threadPool = NIOThreadPool(numberOfThreads: maxConnections)
        threadPool.start()
        self.threadPool = threadPool
        self.configuration = configuration
        self.logger = logger
        self.pool = ConnectionPool(
            name: "postgres", maxConnections: maxConnections, acquireTimeout: acquireTimeout, observer: observer
        ) {
            try await PostgresConnection.connect(configuration, threadPool: threadPool)
        }
    }

    /// Serves the pool until graceful shutdown, then closes every connection and stops the threads.
    public func run() async throws {
        logger.info("postgres pool started", metadata: ["postgres": "\(configuration)", "size": "\(pool.maxConnections)"])
        await cancelWhenGracefulShutdown {
            await self.pool.run()
        }
        pool.close()
        try await threadPool.shutdownGracefully()
    }

    /// Leases a connection for `body`.
    public func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await pool.withConnection(body)
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await withConnection { try await $0.query(query) }
    }

    /// Runs `body` in a transaction on one pooled connection.
    public func withTransaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { try await $0.withTransaction(body) }
    }

}
