import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

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
    /// How often a running job renews its claim (`XCLAIM ... JUSTID`), well inside the visibility timeout.
    public var renewInterval: Duration
    /// How long graceful shutdown waits for running jobs before it cancels them and leaves them unacknowledged.
    public var shutdownGrace: Duration

    /// Creates a configuration with sensible defaults. `batchSize` caps a read; a worker never reads more entries
    /// than it has free handler slots.
    public init(
        stream: String, group: String, consumer: String, batchSize: Int = 100, concurrency: Int = 16,
        blockTime: Duration = .seconds(1), visibilityTimeout: Duration = .seconds(60),
        reclaimInterval: Duration? = nil, maxDeliveries: Int = 5, deadLetterStream: String? = nil,
        start: Start = .beginning, renewInterval: Duration? = nil, shutdownGrace: Duration = .seconds(30)
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
        self.renewInterval = renewInterval ?? visibilityTimeout / 3
        self.shutdownGrace = shutdownGrace
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

/// Consumes a stream through a consumer group: at-least-once delivery across any number of replicas, for jobs
/// that run for seconds or for an hour.
///
/// Each entry read is a job with its own lease: while its handler runs, the claim is renewed (`XCLAIM ... JUSTID`,
/// which resets the entry's idle time without counting a delivery), so no other replica's `XAUTOCLAIM` takes a job
/// that is merely slow; it is acknowledged as soon as its handler returns. The worker reads only as many entries as
/// it has free handler slots, claims entries whose consumer died once they are idle for the visibility timeout, and
/// moves entries delivered `maxDeliveries` times to a dead-letter stream in one Lua script (two replicas cannot both
/// move one). A delivery count therefore means "a runner died or failed", never "a job was slow". On graceful shutdown
/// it stops reading, lets running jobs finish for up to `shutdownGrace`, then cancels them and leaves them
/// unacknowledged for another replica. It reconnects with back-off when Redis goes away. Handlers must be idempotent.
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

    /// Consumes until graceful shutdown or cancellation (see the type's summary for what happens to running jobs).
    public func run() async throws {
        // One thread blocks in XREADGROUP; the other carries renewals and acknowledgements meanwhile.
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        defer { threadPool.shutdownGracefully { _ in } }
        let reader = RedisLink(redis, commandTimeout: configuration.blockTime + redis.timeout, threadPool: threadPool)
        let control = RedisLink(redis, commandTimeout: redis.timeout, threadPool: threadPool)
        let slots = JobSlots(count: max(1, configuration.concurrency))
        let acknowledgements = Acknowledgements()
        await withDiscardingTaskGroup { worker in
            worker.addTask { await self.acknowledge(acknowledgements, control: control) }
            await withDiscardingTaskGroup { jobs in
                await read(into: &jobs, reader: reader, control: control, slots: slots, acknowledgements: acknowledgements)
                // Reading has stopped: running jobs get their grace period, then are cancelled unacknowledged.
                if !Task.isCancelled, await !slots.waitUntilAllFree(for: configuration.shutdownGrace) {
                    logger.warning("jobs still running after the shutdown grace period; handing them back", metadata: [
                        "running": "\(slots.busy)",
                    ])
                    jobs.cancelAll()
                }
            }
            // Every job has ended: what finished is acknowledged before the worker stops.
            acknowledgements.finish()
        }
        reader.close()
        control.close()
    }

    private func read(
        into jobs: inout DiscardingTaskGroup, reader: RedisLink, control: RedisLink, slots: JobSlots, acknowledgements: Acknowledgements
    ) async {
        var backoff = Duration.milliseconds(100)
        var lastReclaim = ContinuousClock.now - configuration.reclaimInterval
        var cursor = "0-0"
        var groupReady = false
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await slots.waitForFree()
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            let free = min(slots.free, max(1, configuration.batchSize))
            do {
                if !groupReady {
                    try await ensureGroup(reader)
                    groupReady = true
                    backoff = .milliseconds(100)
                }
                var entries: [StreamEntry]
                if ContinuousClock.now - lastReclaim >= configuration.reclaimInterval {
                    lastReclaim = .now
                    try await deadLetter(control)
                    (entries, cursor) = try await reclaim(reader, cursor: cursor, count: free)
                } else {
                    entries = try await readNew(reader, count: free)
                }
                if Task.isShuttingDownGracefully, !entries.isEmpty {
                    // A read that was waiting when shutdown began: these stay pending, unstarted, for another replica.
                    logger.info("leaving entries read during shutdown to other replicas", metadata: ["count": "\(entries.count)"])
                    break
                }
                for entry in entries {
                    slots.take()
                    jobs.addTask { await self.runJob(entry, control: control, slots: slots, acknowledgements: acknowledgements) }
                }
            } catch let error as RedisError where error.code == .server("NOGROUP") {
                // The stream or group vanished (Redis restarted without persistence): create it again.
                logger.warning("consumer group missing; recreating it")
                groupReady = false
            } catch {
                if Task.isCancelled { break }
                logger.warning("stream worker lost redis; reconnecting", metadata: ["error": "\(error)", "backoff": "\(backoff)"])
                reader.close()
                groupReady = false
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// One job: the handler, its claim renewed beside it, and its acknowledgement as soon as it succeeds.
    private func runJob(_ entry: StreamEntry, control: RedisLink, slots: JobSlots, acknowledgements: Acknowledgements) async {
        defer { slots.free(1) }
        let succeeded = await withTaskGroup(of: Void.self) { renewals -> Bool in
            renewals.addTask { await self.renew(entry.id, control: control) }
            defer { renewals.cancelAll() }
            do {
                try await handler(entry)
                return true
            } catch {
                if !Task.isCancelled {
                    logger.warning("stream handler failed; entry stays pending", metadata: ["entry": "\(entry.id)", "error": "\(error)"])
                }
                return false
            }
        }
        guard succeeded else {
            observer.onFailed(1)
            return
        }
        acknowledgements.add(entry.id)
    }

    private func renew(_ id: String, control: RedisLink) async {
        while true {
            do {
                try await Task.sleep(for: configuration.renewInterval)
            } catch {
                return
            }
            do {
                try await control.execute(["XCLAIM", configuration.stream, configuration.group, configuration.consumer, "0", id, "JUSTID"])
            } catch {
                logger.warning("could not renew a job's claim", metadata: ["entry": "\(id)", "error": "\(error)"])
            }
        }
    }

    /// Sends the acknowledgements of finished jobs as they come: one XACK for all that finished since the last, so a
    /// job is acknowledged a round trip after it ends and no slower job holds it. A failed XACK is tried again while
    /// Redis is away, for up to the visibility timeout (after that another replica may have the entries, and running
    /// them twice is what idempotent handlers are for).
    private func acknowledge(_ acknowledgements: Acknowledgements, control: RedisLink) async {
        while let ids = await acknowledgements.next() {
            let deadline = ContinuousClock.now + configuration.visibilityTimeout
            var backoff = Duration.milliseconds(50)
            while true {
                do {
                    try await control.execute(["XACK", configuration.stream, configuration.group] + ids)
                    observer.onProcessed(ids.count)
                    break
                } catch {
                    guard ContinuousClock.now + backoff < deadline, !Task.isCancelled else {
                        logger.error("could not acknowledge finished jobs; they will run again", metadata: [
                            "count": "\(ids.count)", "error": "\(error)",
                        ])
                        break
                    }
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(2))
                }
            }
        }
    }

    private func ensureGroup(_ link: RedisLink) async throws {
        do {
            try await link.execute(["XGROUP", "CREATE", configuration.stream, configuration.group,
                                    configuration.start.rawValue, "MKSTREAM"])
        } catch let error as RedisError where error.code == .server("BUSYGROUP") {
            return
        }
    }

    private func readNew(_ link: RedisLink, count: Int) async throws -> [StreamEntry] {
        try StreamCommands.readReply(try await link.execute([
            "XREADGROUP", "GROUP", configuration.group, configuration.consumer,
            "COUNT", String(count), "BLOCK", String(max(1, configuration.blockTime.wholeMilliseconds)),
            "STREAMS", configuration.stream, ">",
        ]))
    }

    /// Claims entries idle for the visibility timeout (their consumer died), going on from `cursor`.
    private func reclaim(_ link: RedisLink, cursor: String, count: Int) async throws -> ([StreamEntry], String) {
        let claimed = try StreamCommands.autoClaimReply(try await link.execute([
            "XAUTOCLAIM", configuration.stream, configuration.group, configuration.consumer,
            String(configuration.visibilityTimeout.wholeMilliseconds), cursor, "COUNT", String(count),
        ]))
        if !claimed.entries.isEmpty {
            logger.info("claimed abandoned entries", metadata: ["count": "\(claimed.entries.count)"])
        }
        return (claimed.entries, claimed.cursor)
    }

    /// Moves idle entries delivered `maxDeliveries` times to the dead-letter stream, atomically.
    private func deadLetter(_ link: RedisLink) async throws {
        let moved = try await link.execute([
            "EVAL", Self.deadLetterScript, "2", configuration.stream, configuration.deadLetterStream,
            configuration.group, String(configuration.visibilityTimeout.wholeMilliseconds),
            String(configuration.maxDeliveries), String(max(1, configuration.batchSize)),
        ]).int ?? 0
        if moved > 0 {
            logger.error("entries moved to the dead-letter stream", metadata: ["count": "\(moved)"])
            observer.onDeadLettered(Int(moved))
        }
    }

    /// KEYS: stream, dead-letter stream. ARGV: group, idle ms, max deliveries, count. The check and the move are one
    /// script, so an entry is moved once however many replicas look at it, and never while its job renews it.
    static let deadLetterScript = """
        local moved = 0
        for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[2], '-', '+', ARGV[4])) do
          local id, deliveries = p[1], p[4]
          if deliveries >= tonumber(ARGV[3]) then
            local fields = {}
            local found = redis.call('XRANGE', KEYS[1], id, id)
            if found[1] then fields = found[1][2] end
            table.insert(fields, 'dead_letter_source_id'); table.insert(fields, id)
            table.insert(fields, 'dead_letter_deliveries'); table.insert(fields, tostring(deliveries))
            redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', unpack(fields))
            redis.call('XACK', KEYS[1], ARGV[1], id)
            moved = moved + 1
          end
        end
        return moved
        """
}

/// A Redis connection of a worker's own, opened on first use and again after a failure, each command run on the
/// worker's thread pool even for a cancelled task (a finished job's acknowledgement must still go out). Commands are
/// serialized: renewals and acknowledgements of concurrent jobs take turns.
final class RedisLink: Sendable {
    private let configuration: RedisConfiguration
    private let commandTimeout: Duration
    private let threadPool: NIOThreadPool
    private let connection = Mutex<RedisConnection?>(nil)

    init(_ configuration: RedisConfiguration, commandTimeout: Duration, threadPool: NIOThreadPool) {
        self.configuration = configuration
        self.commandTimeout = commandTimeout
        self.threadPool = threadPool
    }

    @discardableResult
    func execute(_ arguments: [String]) async throws -> RedisReply {
        let bytes = arguments.map { Array($0.utf8) }
        return try await withCheckedThrowingContinuation { continuation in
            threadPool.submit { [self] state in
                guard case .active = state else {
                    continuation.resume(throwing: RedisError(code: .connectionFailure, reason: "the worker is stopping"))
                    return
                }
                continuation.resume(with: Result { try self.executeBlocking(bytes) })
            }
        }
    }

    private func executeBlocking(_ arguments: [[UInt8]]) throws -> RedisReply {
        try connection.withLock { connection in
            do {
                if connection == nil {
                    connection = try RedisConnection.connectBlocking(configuration, commandTimeout: commandTimeout)
                }
                return try connection!.execute(bytes: arguments).checked()
            } catch let error as RedisError where !error.isConnectionLevel {
                throw error
            } catch {
                connection?.close()
                connection = nil
                throw error
            }
        }
    }

    func close() {
        connection.withLock { connection in
            connection?.close()
            connection = nil
        }
    }
}

/// The ids of finished jobs waiting for their XACK.
package final class Acknowledgements: Sendable {
    private struct State {
        var ids: [String] = []
        var finished = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    package init() {}

    /// A finished job's id, to acknowledge.
    package func add(_ id: String) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.ids.append(id)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// No more ids will come; ``next()`` returns what is left, then `nil`.
    package func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The ids added since the last call, waiting for at least one; `nil` once finished and drained.
    package func next() async -> [String]? {
        while true {
            let (ids, finished) = state.withLock { state -> ([String], Bool) in
                defer { state.ids = [] }
                return (state.ids, state.finished)
            }
            if !ids.isEmpty { return ids }
            if finished { return nil }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waits = state.withLock { state -> Bool in
                    guard state.ids.isEmpty, !state.finished else { return false }
                    state.waiter = continuation
                    return true
                }
                if !waits { continuation.resume() }
            }
        }
    }
}

/// The worker's handler slots: how many jobs run, and waiting for one to free.
package final class JobSlots: Sendable {
    private struct State {
        var free: Int
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let total: Int
    private let state: Mutex<State>

    package init(count: Int) {
        total = count
        state = Mutex(State(free: count))
    }

    /// Slots not running a job.
    package var free: Int { state.withLock { $0.free } }
    /// Slots running a job.
    package var busy: Int { total - free }

    /// A job starts.
    package func take() { state.withLock { $0.free -= 1 } }

    /// Jobs ended.
    package func free(_ count: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.free += count
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns once a slot is free (or the task is cancelled). One caller at a time: the worker's read loop.
    package func waitForFree() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Bool in
                    if state.free > 0 || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    /// Whether every slot is free, waiting at most `limit`. Only shutdown waits for this: looking every 20 ms is
    /// plenty beside jobs that run for seconds.
    package func waitUntilAllFree(for limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while free < total {
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
