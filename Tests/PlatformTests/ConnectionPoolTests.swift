import Platform
import PlatformTesting
import Synchronization
import Testing

/// A value shared between tasks of a test.
final class Shared<Value: Sendable>: Sendable {
    private let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
    var value: Value { state.withLock { $0 } }
    @discardableResult
    func update<R: Sendable>(_ change: (inout Value) -> R) -> R { state.withLock { change(&$0) } }
}

/// A connection that only records whether it is usable, for testing the pool's logic alone.
final class FakeConnection: PooledConnection {
    let id: Int
    let usable = Shared(true)
    let closed = Shared(false)
    init(id: Int) { self.id = id }
    var isReusable: Bool { usable.value && !closed.value }
    func close() { closed.update { $0 = true } }
}

/// A pool of fake connections and the count of connections it opened; the first `failFirst` opens fail.
func makeFakePool(max: Int, timeout: Duration, failFirst: Int = 0) -> (ConnectionPool<FakeConnection>, Shared<Int>) {
    let created = Shared(0)
    let pool = ConnectionPool<FakeConnection>(name: "fake", maxConnections: max, acquireTimeout: timeout) {
        let number = created.update { $0 += 1; return $0 }
        if number <= failFirst { throw ConnectionPoolError(code: .closed, pool: "factory") }
        return FakeConnection(id: number)
    }
    return (pool, created)
}

@Suite struct ConnectionPoolTests {
    private func makePool(max: Int, timeout: Duration = .seconds(5), failFirst: Int = 0) -> (ConnectionPool<FakeConnection>, Shared<Int>) {
        makeFakePool(max: max, timeout: timeout, failFirst: failFirst)
    }

    @Test func neverOpensMoreThanTheLimit() async throws {
        let (pool, created) = makePool(max: 3)
        let busy = Shared(0)
        let peak = Shared(0)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            await withTaskGroup(of: Void.self) { workers in
                for _ in 0..<40 {
                    workers.addTask {
                        try? await pool.withConnection { _ in
                            let now = busy.update { $0 += 1; return $0 }
                            peak.update { $0 = max($0, now) }
                            try await Task.sleep(for: .milliseconds(2))
                            busy.update { $0 -= 1 }
                        }
                    }
                }
            }
            group.cancelAll()
        }
        #expect(created.value == 3)
        #expect(peak.value == 3)
    }

    @Test func reusesAnIdleConnection() async throws {
        let (pool, created) = makePool(max: 2)
        let first = try await pool.withConnection { $0.id }
        let second = try await pool.withConnection { $0.id }
        #expect(first == second)
        #expect(created.value == 1)
    }

    @Test func replacesBrokenConnections() async throws {
        let (pool, created) = makePool(max: 1)
        let broken = try await pool.withConnection { connection in
            connection.usable.update { $0 = false }
            return connection
        }
        #expect(broken.closed.value)
        let next = try await pool.withConnection { $0.id }
        #expect(next == 2)
        #expect(created.value == 2)
        #expect(pool.counts.idle == 1)
    }

    @Test func timesOutWhenExhausted() async throws {
        let (pool, _) = makePool(max: 1, timeout: .milliseconds(200))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            _ = try? await pool.withConnection { _ in
                await #expect(throws: ConnectionPoolError.self) {
                    try await pool.withConnection { _ in }
                }
            }
            group.cancelAll()
        }
        #expect(pool.counts.waiting == 0)
    }

    @Test func aFailedConnectFreesItsSlot() async throws {
        let (pool, _) = makePool(max: 1, failFirst: 1)
        await #expect(throws: ConnectionPoolError.self) { try await pool.withConnection { _ in } }
        let id = try await pool.withConnection { $0.id }
        #expect(id == 2)
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        let (pool, _) = makePool(max: 1)
        try await pool.withConnection { _ in
            let waiter = Task { try await pool.withConnection { _ in } }
            let queued = await waitForWaiters(pool, count: 1)
            #expect(queued)
            waiter.cancel()
            await #expect(throws: CancellationError.self) { try await waiter.value }
            #expect(pool.counts.waiting == 0)
        }
    }

    @Test func closingFailsWaitersAndRefusesNewLeases() async throws {
        let (pool, _) = makePool(max: 1)
        let held = try await pool.withConnection { $0 }
        pool.close()
        #expect(held.closed.value)
        await #expect(throws: ConnectionPoolError.self) { try await pool.withConnection { _ in } }
    }

    private func waitForWaiters(_ pool: ConnectionPool<FakeConnection>, count: Int) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if pool.counts.waiting == count { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }
}

@Suite struct ConnectionPoolConcurrencyTests {
    private func makePool(max: Int, timeout: Duration) -> (ConnectionPool<FakeConnection>, Shared<Int>) {
        makeFakePool(max: max, timeout: timeout)
    }

    /// Runs `body` beside the pool's expiry loop.
    private func running<T: Sendable>(_ pool: ConnectionPool<FakeConnection>, _ body: @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await pool.run(); return nil }
            let result = try await body()
            group.cancelAll()
            return result
        }
    }

    @Test func twoHundredConcurrentAcquiresOnFourSeeNoTimeout() async throws {
        // All the work takes about 200 × 2.5 ms / 4 = 125 ms: a lost wake-up would show as a 3 s timeout.
        let (pool, created) = makePool(max: 4, timeout: .seconds(3))
        let failures = try await running(pool) {
            await withTaskGroup(of: Bool.self) { workers in
                for _ in 0..<200 {
                    workers.addTask {
                        do {
                            try await pool.withConnection { _ in try await Task.sleep(for: .microseconds(Int.random(in: 0...5000))) }
                            return false
                        } catch {
                            return true
                        }
                    }
                }
                return await workers.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
        }
        #expect(failures == 0)
        #expect(created.value <= 4)
        #expect(pool.counts.waiting == 0 && pool.counts.inUse == 0)
    }

    @Test func pairsTakenTogetherNeverDeadlock() async throws {
        // Every task holds two connections at once, as a COPY pipe does; one by one this deadlocks at once.
        let (pool, _) = makePool(max: 3, timeout: .seconds(3))
        let peak = Shared(0)
        let busy = Shared(0)
        let failures = try await running(pool) {
            await withTaskGroup(of: Bool.self) { workers in
                for index in 0..<60 {
                    workers.addTask {
                        do {
                            if index.isMultiple(of: 3) {
                                try await pool.withConnection { _ in try await Task.sleep(for: .milliseconds(1)) }
                            } else {
                                try await pool.withConnections(2) { pair in
                                    #expect(pair.count == 2 && pair[0] !== pair[1])
                                    let now = busy.update { $0 += 2; return $0 }
                                    peak.update { $0 = max($0, now) }
                                    try await Task.sleep(for: .milliseconds(2))
                                    busy.update { $0 -= 2 }
                                }
                            }
                            return false
                        } catch {
                            return true
                        }
                    }
                }
                return await workers.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
        }
        #expect(failures == 0)
        #expect(peak.value <= 3)
    }

    @Test func aWaiterQueuedBehindAPairIsServedInOrder() async throws {
        let (pool, _) = makePool(max: 2, timeout: .seconds(3))
        let order = Shared<[String]>([])
        try await running(pool) {
            try await pool.withConnection { _ in
                let pair = Task { try await pool.withConnections(2) { _ in order.update { $0.append("pair") } } }
                #expect(await waitUntil(timeout: .seconds(5)) { pool.counts.waiting == 1 })
                let single = Task { try await pool.withConnection { _ in order.update { $0.append("single") } } }
                #expect(await waitUntil(timeout: .seconds(5)) { pool.counts.waiting == 2 })
                // One connection is free, but the pair at the head of the queue needs two: the single waits its turn.
                #expect(order.value.isEmpty)
                _ = (pair, single)
            }
            #expect(await waitUntil(timeout: .seconds(5)) { order.value.count == 2 })
        }
        #expect(order.value == ["pair", "single"])
    }

    @Test func closingFailsQueuedWaitersAndEveryLaterAcquire() async throws {
        let (pool, _) = makePool(max: 1, timeout: .seconds(30))
        let held = try await pool.withConnection { $0 }
        _ = held
        try await pool.withConnection { _ in
            let waiter = Task { try await pool.withConnection { _ in } }
            #expect(await waitUntil(timeout: .seconds(5)) { pool.counts.waiting == 1 })
            pool.close()
            await #expect(throws: ConnectionPoolError.self) { try await waiter.value }
        }
        await #expect(throws: ConnectionPoolError.self) { try await pool.withConnections(1) { _ in } }
    }
}
