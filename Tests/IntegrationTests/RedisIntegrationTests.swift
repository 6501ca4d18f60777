import Foundation
import Platform
import PlatformTesting
import ServiceLifecycle
import SharedModels
import Synchronization
import Testing

/// Records what a stream handler saw, from many tasks.
final class DeliveryLog: Sendable {
    private let state = Mutex<[String: Int]>([:])
    func record(_ id: String) { state.withLock { $0[id, default: 0] += 1 } }
    var distinct: Int { state.withLock { $0.count } }
    var duplicates: Int { state.withLock { $0.values.filter { $0 > 1 }.count } }
    func count(_ id: String) -> Int { state.withLock { $0[id] ?? 0 } }
}

/// A service that runs another and notes when graceful shutdown has reached it: `triggerGracefulShutdown()` returns
/// before the service group has passed the signal on, so a test that must act after the service saw it waits on this.
struct ShutdownObserved<Inner: Service>: Service {
    let inner: Inner
    let reached = DeliveryLog()

    func run() async throws {
        try await withGracefulShutdownHandler { try await inner.run() } onGracefulShutdown: { reached.record("shutdown") }
    }
}

extension Integration {
    @Suite struct RedisTests {
        func withRedis<T: Sendable>(_ body: (RedisClient) async throws -> T) async throws -> T {
            let client = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            return try await withServices([client]) { try await body(client) }
        }

        func worker(
            stream: String, consumer: String, visibility: Duration = .seconds(30), maxDeliveries: Int = 5,
            shutdownGrace: Duration = .seconds(30),
            handler: @escaping @Sendable (StreamEntry) async throws -> Void
        ) throws -> StreamWorker {
            StreamWorker(
                configuration: StreamWorkerConfiguration(
                    stream: stream, group: "testers", consumer: consumer, batchSize: 200, concurrency: 8,
                    blockTime: .milliseconds(200), visibilityTimeout: visibility, reclaimInterval: .milliseconds(100),
                    maxDeliveries: maxDeliveries, shutdownGrace: shutdownGrace),
                redis: try TestEnvironment.redis(), logger: TestEnvironment.logger, handler: handler)
        }

        func pendingCount(_ redis: RedisClient, _ stream: String) async throws -> Int? {
            try await redis.execute(["XPENDING", stream, "testers"]).array?.first?.int.map(Int.init)
        }

        /// A 3-minute job with a 10-second visibility timeout, on two workers: a job that renews its claim is never
        /// taken by the other worker, never counted as redelivered, never dead-lettered (with maxDeliveries 2, one
        /// reclaim would do it). The suite's longest test, by the issue's own numbers.
        @Test func aThreeMinuteJobWithATenSecondVisibilityTimeoutRunsOnceOnTwoWorkers() async throws {
            try await withRedis { redis in
                let stream = TestEnvironment.uniqueName("stream")
                let log = DeliveryLog()
                let finished = DeliveryLog()
                let workers = try ["a", "b"].map { consumer in
                    try worker(stream: stream, consumer: consumer, visibility: .seconds(10), maxDeliveries: 2) { entry in
                        log.record(entry.id)
                        try await Task.sleep(for: .seconds(180))
                        finished.record(entry.id)
                    }
                }
                try await withServices(workers) {
                    let id = try #require(try await redis.execute(["XADD", stream, "*", "job", "long"]).string)
                    let done = await waitUntil(timeout: .seconds(240)) { finished.count(id) == 1 }
                    #expect(done)
                    #expect(log.count(id) == 1, "the job started \(log.count(id)) times")
                    let settled = try await waitUntil(timeout: .seconds(5)) { try await pendingCount(redis, stream) == 0 }
                    #expect(settled)
                    #expect(try await redis.execute(["XLEN", "\(stream):dead-letter"]).int == 0)
                }
                try await redis.execute(["DEL", stream, "\(stream):dead-letter"])
            }
        }

        /// A worker process killed with SIGKILL in the middle of a job: another worker runs the job again, once.
        @Test func aJobWhoseWorkerIsKilledRunsAgainElsewhereOnce() async throws {
            try await withRedis { redis in
                let stream = TestEnvironment.uniqueName("stream")
                let configuration = try TestEnvironment.redis()
                let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                let doomed = Process()
                doomed.executableURL = root.appendingPathComponent(".build/debug/platform-bench")
                doomed.arguments = ["stream-jobs", "--redis-host", configuration.host, "--redis-port", String(configuration.port),
                                    "--stream", stream, "--consumer", "doomed", "--job-seconds", "60", "--visibility-ms", "2000"]
                doomed.standardOutput = FileHandle.nullDevice
                doomed.standardError = FileHandle.nullDevice
                try doomed.run()
                defer { if doomed.isRunning { kill(doomed.processIdentifier, SIGKILL) } }
                func counter(_ kind: String, _ id: String) async throws -> Int {
                    try await redis.execute(["GET", "\(stream):\(kind):\(id)"]).string.flatMap(Int.init) ?? 0
                }
                // The group exists once the process runs; the job goes in after.
                let grouped = await waitUntil(timeout: .seconds(30)) {
                    (try? await redis.execute(["XINFO", "GROUPS", stream]).array?.isEmpty == false) ?? false
                }
                #expect(grouped)
                let id = try #require(try await redis.execute(["XADD", stream, "*", "job", "x"]).string)
                let started = try await waitUntil(timeout: .seconds(30)) { try await counter("started", id) == 1 }
                #expect(started)
                kill(doomed.processIdentifier, SIGKILL)
                doomed.waitUntilExit()

                let survivor = try worker(stream: stream, consumer: "survivor", visibility: .seconds(2)) { entry in
                    _ = try await redis.execute(["INCR", "\(stream):started:\(entry.id)"])
                    _ = try await redis.execute(["INCR", "\(stream):finished:\(entry.id)"])
                }
                try await withServices([survivor]) {
                    let finished = try await waitUntil(timeout: .seconds(20)) { try await counter("finished", id) == 1 }
                    #expect(finished)
                    let settled = try await waitUntil(timeout: .seconds(5)) { try await pendingCount(redis, stream) == 0 }
                    #expect(settled)
                }
                let starts = try await counter("started", id), finishes = try await counter("finished", id)
                #expect(starts == 2, "once in the killed worker, once in the survivor")
                #expect(finishes == 1)
                try await redis.execute(["DEL", stream, "\(stream):started:\(id)", "\(stream):finished:\(id)"])
            }
        }

        @Test func fastJobsAreAcknowledgedWhileASlowOneRuns() async throws {
            try await withRedis { redis in
                let stream = TestEnvironment.uniqueName("stream")
                let release = AsyncStream<Void>.makeStream()
                let consumer = try worker(stream: stream, consumer: "c") { entry in
                    if entry["kind"] == Array("slow".utf8) { for await _ in release.stream { break } }
                }
                try await withServices([consumer]) {
                    try await redis.execute(["XADD", stream, "*", "kind", "slow"])
                    for _ in 0..<20 { try await redis.execute(["XADD", stream, "*", "kind", "fast"]) }
                    // Only the slow job is left pending: the fast ones were acknowledged as they ended.
                    let onlySlow = try await waitUntil(timeout: .seconds(10)) { try await pendingCount(redis, stream) == 1 }
                    #expect(onlySlow)
                    release.continuation.yield()
                    let settled = try await waitUntil(timeout: .seconds(10)) { try await pendingCount(redis, stream) == 0 }
                    #expect(settled)
                }
                try await redis.execute(["DEL", stream])
            }
        }

        /// Graceful shutdown stops reading at once, lets a job that ends within the grace period finish and be
        /// acknowledged, and hands one that does not back, unacknowledged, when the grace period ends.
        @Test func gracefulShutdownFinishesOrHandsBackWithinTheGracePeriod() async throws {
            try await withRedis { redis in
                for (jobSeconds, acknowledged) in [(1, true), (30, false)] {
                    let stream = TestEnvironment.uniqueName("stream")
                    let started = DeliveryLog()
                    let consumer = try worker(stream: stream, consumer: "c", shutdownGrace: .seconds(3)) { entry in
                        started.record(entry.id)
                        try await Task.sleep(for: .seconds(jobSeconds))
                    }
                    let observed = ShutdownObserved(inner: consumer)
                    let group = ServiceGroup(configuration: .init(
                        services: [.init(service: observed)], gracefulShutdownSignals: [], logger: TestEnvironment.logger))
                    let running = Task { try await group.run() }
                    let id = try #require(try await redis.execute(["XADD", stream, "*", "job", "x"]).string)
                    #expect(await waitUntil(timeout: .seconds(10)) { started.count(id) == 1 })
                    let shutdownStarted = ContinuousClock.now
                    await group.triggerGracefulShutdown()
                    #expect(await waitUntil(timeout: .seconds(5)) { observed.reached.count("shutdown") == 1 })
                    // Published after shutdown began: never read.
                    let late = try #require(try await redis.execute(["XADD", stream, "*", "job", "late"]).string)
                    try await running.value
                    #expect(ContinuousClock.now - shutdownStarted < .seconds(6))
                    #expect(started.count(late) == 0)
                    let pending = try StreamCommands.pendingReply(try await redis.execute(["XPENDING", stream, "testers", "-", "+", "10"]))
                    #expect(pending.contains { $0.id == id } == !acknowledged, "job of \(jobSeconds) s")
                    try await redis.execute(["DEL", stream])
                }
            }
        }

        @Test func commandsAreBinarySafeAndPipelined() async throws {
            try await withRedis { redis in
                let key = TestEnvironment.uniqueName("key")
                let value: [UInt8] = [0, 13, 10, 255, 32, 0]
                try await redis.execute(bytes: [Array("SET".utf8), Array(key.utf8), value])
                #expect(try await redis.execute(["GET", key]).bytes == value)
                let replies = try await redis.pipeline([[Array("INCR".utf8), Array("\(key):n".utf8)],
                                                         [Array("INCR".utf8), Array("\(key):n".utf8)],
                                                         [Array("HGET".utf8), Array(key.utf8), Array("f".utf8)]])
                #expect(replies[0] == .integer(1))
                #expect(replies[1] == .integer(2))
                if case .error = replies[2] {} else { Issue.record("expected WRONGTYPE, got \(replies[2])") }
                let error = await #expect(throws: RedisError.self) { try await redis.execute(["HGET", key, "f"]) }
                #expect(error?.code == .server("WRONGTYPE"))
                try await redis.execute(["DEL", key, "\(key):n"])
            }
        }

        /// Concurrent callers share round trips (automatic pipelining); each must get exactly its own replies,
        /// in its own order, and an error reply stays with the caller that caused it.
        @Test func concurrentCallersGetTheirOwnRepliesFromSharedRoundTrips() async throws {
            try await withRedis { redis in
                let prefix = TestEnvironment.uniqueName("batch")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for caller in 0..<200 {
                        group.addTask {
                            let key = "\(prefix):\(caller)"
                            let replies = try await redis.pipeline([
                                Array("SET \(key) v\(caller)".split(separator: " ").map { Array($0.utf8) }),
                                [Array("APPEND".utf8), Array(key.utf8), Array("-x".utf8)],
                                [Array("GET".utf8), Array(key.utf8)],
                                [Array("LPUSH".utf8), Array(key.utf8), Array("wrong-type".utf8)],
                            ])
                            #expect(replies.count == 4)
                            #expect(replies[2].string == "v\(caller)-x")
                            if case .error(let text) = replies[3] { #expect(text.hasPrefix("WRONGTYPE")) } else { Issue.record("expected WRONGTYPE") }
                            #expect(try await redis.execute(["GET", key]).string == "v\(caller)-x")
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }

        @Test func typedEventsRoundTripThroughAStream() async throws {
            try await withRedis { redis in
                let event = RunEvent(runID: "run_7", jobID: "job-1", kind: .completed, rowsRead: 10, rowsWritten: 9,
                                     bytes: 1234, stageTimingsMS: ["load": 12.5],
                                     occurredAt: Date(timeIntervalSince1970: 1_700_000_000))
                let id = try await StreamPublisher(redis: redis, maxLength: 1000).publish(event)
                let reply = try await redis.execute(["XRANGE", PlatformStream.runEvents.rawValue, id, id])
                let entry = try #require(reply.array?.first.flatMap(StreamCommands.entry))
                #expect(entry.eventType == "completed")
                #expect(try entry.decode(RunEvent.self) == event)
                let json = String(decoding: entry["payload"] ?? [], as: UTF8.self)
                #expect(json.contains(#""run_id":"run_7""#))
            }
        }

        @Test func aGroupDeliversEachOf10kEntriesOnceAcrossTwoConsumers() async throws {
            try await withRedis { redis in
                let stream = TestEnvironment.uniqueName("stream")
                let publisher = StreamPublisher(redis: redis, maxLength: 100_000)
                let log = DeliveryLog()
                let perConsumer = Mutex<[String: Int]>([:])
                let workers = try ["a", "b"].map { consumer in
                    try worker(stream: stream, consumer: consumer) { entry in
                        log.record(entry.id)
                        perConsumer.withLock { $0[consumer, default: 0] += 1 }
                    }
                }
                try await withServices(workers) {
                    for batch in 0..<10 {
                        let entries = (0..<1000).map { [("n", Array(String(batch * 1000 + $0).utf8))] }
                        try await publisher.append(stream: stream, entries: entries)
                    }
                    let done = await waitUntil(timeout: .seconds(60)) { log.distinct == 10_000 }
                    #expect(done, "delivered \(log.distinct) of 10000")
                    let settled = try await waitUntil(timeout: .seconds(10)) {
                        try await redis.execute(["XPENDING", stream, "testers"]).array?.first?.int == 0
                    }
                    #expect(settled, "entries left unacknowledged")
                }
                #expect(log.duplicates == 0)
                #expect(perConsumer.withLock { $0.values.reduce(0, +) } == 10_000)
                try await redis.execute(["DEL", stream])
            }
        }

        @Test func anEntryWhoseConsumerDiedIsClaimedByAnother() async throws {
            try await withRedis { redis in
                let stream = TestEnvironment.uniqueName("stream")
                try await redis.execute(["XGROUP", "CREATE", stream, "testers", "0", "MKSTREAM"])
                let id = try #require(try await redis.execute(["XADD", stream, "*", "job", "orphan"]).string)
                // A consumer reads the entry and dies before acknowledging it.
                let read = try await redis.execute(["XREADGROUP", "GROUP", "testers", "dead", "COUNT", "1", "STREAMS", stream, ">"])
                #expect(try StreamCommands.readReply(read).map(\.id) == [id])
                let log = DeliveryLog()
                let survivor = try worker(stream: stream, consumer: "survivor", visibility: .milliseconds(300)) { entry in
                    log.record(entry.id)
                }
                try await withServices([survivor]) {
                    let claimed = await waitUntil(timeout: .seconds(10)) { log.count(id) == 1 }
                    #expect(claimed)
                    let settled = try await waitUntil(timeout: .seconds(5)) {
                        try await redis.execute(["XPENDING", stream, "testers"]).array?.first?.int == 0
                    }
                    #expect(settled)
                }
                try await redis.execute(["DEL", stream])
            }
        }

        @Test func anEntryThatKeepsFailingGoesToTheDeadLetterStream() async throws {
            struct Failure: Error {}
            try await withRedis { redis in
                let stream = TestEnvironment.uniqueName("stream")
                let log = DeliveryLog()
                let failing = try worker(stream: stream, consumer: "c", visibility: .milliseconds(200), maxDeliveries: 3) { entry in
                    log.record(entry.id)
                    throw Failure()
                }
                try await withServices([failing]) {
                    let id = try #require(try await redis.execute(["XADD", stream, "*", "job", "poison"]).string)
                    let deadLettered = try await waitUntil(timeout: .seconds(15)) {
                        try await redis.execute(["XLEN", "\(stream):dead-letter"]).int == 1
                    }
                    #expect(deadLettered)
                    let dead = try await redis.execute(["XRANGE", "\(stream):dead-letter", "-", "+"])
                    let entry = try #require(dead.array?.first.flatMap(StreamCommands.entry))
                    #expect(entry["job"] == Array("poison".utf8))
                    #expect(entry["dead_letter_source_id"] == Array(id.utf8))
                    #expect(log.count(id) == 3)
                    let pending = try await redis.execute(["XPENDING", stream, "testers"]).array?.first?.int
                    #expect(pending == 0)
                }
                try await redis.execute(["DEL", stream, "\(stream):dead-letter"])
            }
        }

        @Test func theWorkerAndClientResumeAfterARedisRestart() async throws {
            try await withRedis { redis in
                let stream = TestEnvironment.uniqueName("stream")
                let log = DeliveryLog()
                let consumer = try worker(stream: stream, consumer: "c") { entry in
                    log.record(String(decoding: entry["n"] ?? [], as: UTF8.self))
                }
                try await withServices([consumer]) {
                    try await redis.execute(["XADD", stream, "*", "n", "before"])
                    #expect(await waitUntil(timeout: .seconds(10)) { log.count("before") == 1 })
                    try await TestEnvironment.restartRedis()
                    // The pooled connection died with the server; the client notices and connects again.
                    try await redis.execute(["XADD", stream, "*", "n", "after"])
                    let resumed = await waitUntil(timeout: .seconds(20)) { log.count("after") == 1 }
                    #expect(resumed)
                }
                try await redis.execute(["DEL", stream])
            }
        }
    }
}
