import Foundation
import Logging
import NIOPosix
import ServiceLifecycle

/// Follows a stream without a consumer group: every replica that runs one sees every entry appended after it
/// started (for broadcasts such as "wake up, the schedule changed"). Reads block on a connection and thread of
/// its own; a lost connection is opened again with back-off, continuing after the last entry seen.
public final class StreamFollower: Service, Sendable {
    let stream: String
    let redis: RedisConfiguration
    let blockTime: Duration
    let logger: Logger
    let handler: @Sendable ([StreamEntry]) async -> Void

    /// A follower of `stream` that hands each batch of new entries to `handler`.
    public init(
        stream: String, redis: RedisConfiguration, blockTime: Duration = .seconds(1), logger: Logger,
        handler: @escaping @Sendable ([StreamEntry]) async -> Void
    ) {
        self.stream = stream
        self.redis = redis
        self.blockTime = blockTime
        self.logger = logger
        self.handler = handler
    }

    public func run() async throws {
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        defer { threadPool.shutdownGracefully { _ in } }
        var connection: RedisConnection?
        var lastID: String?
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                if connection == nil {
                    connection = try await threadPool.runIfActive { [redis, blockTime] in
                        try RedisConnection.connectBlocking(redis, commandTimeout: blockTime + redis.timeout)
                    }
                    backoff = .milliseconds(100)
                }
                guard let open = connection else { continue }
                if lastID == nil {
                    // Start after the newest entry present now; "$" in every read would lose entries between reads.
                    let newest = try await threadPool.runIfActive { [stream] in
                        try open.execute(["XREVRANGE", stream, "+", "-", "COUNT", "1"]).checked()
                    }
                    lastID = newest.array?.first.flatMap(StreamCommands.entry)?.id ?? "0-0"
                }
                let after = lastID ?? "0-0"
                let reply = try await threadPool.runIfActive { [stream, blockTime] in
                    try open.execute(["XREAD", "COUNT", "100", "BLOCK", String(max(1, blockTime.wholeMilliseconds)), "STREAMS", stream, after]).checked()
                }
                let entries = try StreamCommands.readReply(reply)
                if let last = entries.last {
                    lastID = last.id
                    await handler(entries)
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("stream follower lost redis; reconnecting", metadata: ["stream": "\(stream)", "error": "\(error)"])
                connection?.close()
                connection = nil
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        connection?.close()
    }
}
