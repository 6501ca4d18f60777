import NIOPosix
import Synchronization

/// Automatic pipelining: commands submitted while a round trip is in flight are written together in the next
/// one, on one connection. Under load a single round trip serves many callers, which costs far less than a
/// round trip (and two thread hops) per caller; alone, a caller waits for exactly one round trip.
///
/// Each caller's commands stay contiguous and in order. Blocking commands (`XREADGROUP ... BLOCK`) must not
/// come here: they would hold every other caller.
final class RedisCommandBatcher: Sendable {
    private struct Pending {
        var commands: [[[UInt8]]]
        var continuation: CheckedContinuation<[RedisReply], any Error>
    }

    private struct State {
        var queue: [Pending] = []
        var draining = false
        var closed = false
    }

    private let state = Mutex(State())
    /// Touched only by the one draining thread at a time.
    private let connection = Mutex<RedisConnection?>(nil)
    private let connect: @Sendable () throws -> RedisConnection
    private let threadPool: NIOThreadPool

    init(threadPool: NIOThreadPool, connect: @escaping @Sendable () throws -> RedisConnection) {
        self.threadPool = threadPool
        self.connect = connect
    }

    /// Sends the commands in the next round trip and returns their replies (error replies in place).
    func submit(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            let startDraining = state.withLock { state -> Bool? in
                if state.closed { return nil }
                state.queue.append(Pending(commands: commands, continuation: continuation))
                if state.draining { return false }
                state.draining = true
                return true
            }
            switch startDraining {
            case nil: continuation.resume(throwing: RedisError(code: .connectionFailure, reason: "the Redis client is closed"))
            case true?: threadPool.submit { _ in self.drain() }
            case false?: break
            }
        }
    }

    /// Fails what is queued and closes the connection.
    func close() {
        let pending = state.withLock { state in
            state.closed = true
            defer { state.queue = [] }
            return state.queue
        }
        for item in pending { item.continuation.resume(throwing: RedisError(code: .connectionFailure, reason: "the Redis client is closed")) }
        connection.withLock { connection in
            connection?.close()
            connection = nil
        }
    }

    /// Runs round trips until the queue is empty; one thread at a time (`draining`).
    private func drain() {
        while true {
            let batch = state.withLock { state -> [Pending] in
                let batch = state.queue
                state.queue = []
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                let replies = try roundTrip(batch.flatMap(\.commands))
                var offset = 0
                for item in batch {
                    item.continuation.resume(returning: Array(replies[offset..<(offset + item.commands.count)]))
                    offset += item.commands.count
                }
            } catch {
                for item in batch { item.continuation.resume(throwing: error) }
            }
        }
    }

    private func roundTrip(_ commands: [[[UInt8]]]) throws -> [RedisReply] {
        try connection.withLock { connection in
            if let current = connection, !current.isReusable {
                current.close()
                connection = nil
            }
            let current = try connection ?? connect()
            connection = current
            do {
                let replies = try current.pipeline(commands)
                guard replies.count == commands.count else { throw RedisError(code: .unexpectedReply, reason: "pipeline reply count") }
                return replies
            } catch {
                // The connection's state is unknown after an I/O error: the next batch connects afresh.
                current.close()
                connection = nil
                throw error
            }
        }
    }
}
