import Platform
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

@Suite struct ConnectionPoolTests {
    private func makePool(max: Int, timeout: Duration = .seconds(5), failFirst: Int = 0) -> (ConnectionPool<FakeConnection>, Shared<Int>) {
        let created = Shared(0)
        let pool = ConnectionPool<FakeConnection>(name: "fake", maxConnections: max, acquireTimeout: timeout) {
            let number = created.update { $0 += 1; return $0 }
            if number <= failFirst { throw ConnectionPoolError(code: .closed, pool: "factory") }
            return FakeConnection(id: number)
        }
        return (pool, created)
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
