import NIOPosix
import ServiceLifecycle

/// Owns an `NIOThreadPool` for the application's lifetime (blocking C calls that are not pooled connections,
/// such as checks against customers' databases) and stops its threads when the application stops.
public struct ThreadPoolService: Service {
    /// The running pool.
    public let threadPool: NIOThreadPool

    /// Starts a pool of `threads` threads.
    public init(threads: Int) {
        let threadPool = NIOThreadPool(numberOfThreads: max(1, threads))
        threadPool.start()
        self.threadPool = threadPool
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await threadPool.shutdownGracefully()
    }
}
