import Synchronization

/// A connection that a ``ConnectionPool`` can hand out and take back.
public protocol PooledConnection: AnyObject, Sendable {
    /// Checked when the connection comes back and before it is handed out again; `false` discards it.
    var isReusable: Bool { get }
    /// Releases the underlying handle.
    func close()
}

/// Why a connection could not be leased.
public struct ConnectionPoolError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable {
        /// Every connection stayed busy for the whole acquire timeout.
        case timeout
        /// The pool is shutting down.
        case closed
    }
    /// What went wrong.
    public let code: Code
    /// The pool's name.
    public let pool: String

    /// Creates an error.
    public init(code: Code, pool: String) {
        self.code = code
        self.pool = pool
    }

    public var description: String { "ConnectionPoolError(pool: \(pool), code: \(code.rawValue))" }
}

/// Observes the pool's counters, for gauges on `/metrics`.
public struct ConnectionPoolObserver: Sendable {
    /// Called after every change with (idle, in use, waiting).
    public var onChange: @Sendable (_ idle: Int, _ inUse: Int, _ waiting: Int) -> Void
    /// Called when an acquire times out.
    public var onTimeout: @Sendable () -> Void

    /// Creates an observer.
    public init(
        onChange: @escaping @Sendable (Int, Int, Int) -> Void = { _, _, _ in },
        onTimeout: @escaping @Sendable () -> Void = {}
    ) {
        self.onChange = onChange
        self.onTimeout = onTimeout
    }
}

/// A bounded pool of connections, shared by tasks.
///
/// At most `maxConnections` are open; a task that finds none free waits up to `acquireTimeout` in FIFO
/// order. Connections that are broken (after a server restart, or left mid-transaction) are discarded and
/// replaced on demand, so the pool survives restarts of its server. ``run()`` expires waiters and must be
/// running (it is a ServiceLifecycle service through its owner); when it ends the pool closes.
///
/// Whether to wait and the waiter's place in the queue are decided under one lock, so a connection given back at
/// that moment always reaches a waiter. A task that needs two connections at once (a COPY pipe from one
/// database to another on the same pool) takes them together with ``withConnections(_:_:)``: taking them one by one
/// deadlocks as soon as every holder waits for its second.
public final class ConnectionPool<Connection: PooledConnection>: Sendable {
    /// The pool's name, used in errors and metrics.
    public let name: String
    /// The most connections open at once.
    public let maxConnections: Int
    /// How long an acquire may wait.
    public let acquireTimeout: Duration
    private let factory: @Sendable () async throws -> Connection
    private let observer: ConnectionPoolObserver
    private let state: Mutex<State>

    /// What a lease is made of: idle connections, and slots to open new ones in.
    private struct Grant {
        var connections: [Connection] = []
        var slots = 0
    }

    private struct Waiter {
        let id: Int
        let wanted: Int
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Grant, any Error>
    }

    private struct State {
        var idle: [Connection] = []
        var open = 0
        var waiters: [Waiter] = []
        var cancelledBeforeWaiting: Set<Int> = []
        var nextWaiterID = 0
        var closed = false
        /// Broken idle connections taken out of `idle`, to be closed outside the lock.
        var discarded: [Connection] = []

        /// `wanted` connections now, when they are free and nobody waits ahead; `nil` otherwise.
        mutating func grant(_ wanted: Int, max: Int) -> Grant? {
            while let index = idle.firstIndex(where: { !$0.isReusable }) {
                discarded.append(idle.remove(at: index))
                open -= 1
            }
            guard idle.count + (max - open) >= wanted else { return nil }
            var grant = Grant()
            while grant.connections.count < wanted, let connection = idle.popLast() { grant.connections.append(connection) }
            grant.slots = wanted - grant.connections.count
            open += grant.slots
            return grant
        }

        /// The waiters at the head of the queue that can be served now, in order, with what each gets.
        mutating func serveWaiters(max: Int) -> [(Waiter, Grant)] {
            var served: [(Waiter, Grant)] = []
            while let head = waiters.first, let grant = grant(head.wanted, max: max) {
                waiters.removeFirst()
                served.append((head, grant))
            }
            return served
        }

        mutating func takeDiscarded() -> [Connection] {
            defer { discarded = [] }
            return discarded
        }
    }

    /// Creates a pool that opens connections with `factory`.
    public init(
        name: String, maxConnections: Int, acquireTimeout: Duration = .seconds(10),
        observer: ConnectionPoolObserver = ConnectionPoolObserver(),
        factory: @escaping @Sendable () async throws -> Connection
    ) {
        precondition(maxConnections > 0, "a pool needs at least one connection")
        self.name = name
        self.maxConnections = maxConnections
        self.acquireTimeout = acquireTimeout
        self.factory = factory
        self.observer = observer
        self.state = Mutex(State())
    }

    /// Leases a connection for the duration of `body`, then returns it (or discards it when broken).
    public func withConnection<T>(_ body: (Connection) async throws -> T) async throws -> T {
        try await withConnections(1) { try await body($0[0]) }
    }

    /// Leases `count` connections at once (all or none, in the queue as one waiter) for the duration of `body`.
    public func withConnections<T>(_ count: Int, _ body: ([Connection]) async throws -> T) async throws -> T {
        precondition((1...maxConnections).contains(count), "\(count) connections from a pool of \(maxConnections)")
        let connections = try await acquire(count)
        do {
            let result = try await body(connections)
            connections.forEach(release)
            return result
        } catch {
            connections.forEach(release)
            throw error
        }
    }

    /// Expires waiters past their deadline until cancelled or shut down gracefully, then closes the pool.
    public func run() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(50))
            } catch {
                break
            }
            expireWaiters(now: .now)
        }
        close()
    }

    /// Closes idle connections, fails waiters (and any that come later), and closes in-use connections when they
    /// come back.
    public func close() {
        let (idle, waiters) = state.withLock { state -> ([Connection], [Waiter]) in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        idle.forEach { $0.close() }
        waiters.forEach { $0.continuation.resume(throwing: ConnectionPoolError(code: .closed, pool: name)) }
        report()
    }

    /// Counts of idle, in-use and waiting, for diagnostics.
    public var counts: (idle: Int, inUse: Int, waiting: Int) {
        state.withLock { ($0.idle.count, $0.open - $0.idle.count, $0.waiters.count) }
    }

    private func acquire(_ wanted: Int) async throws -> [Connection] {
        let (fast, discarded) = state.withLock { state -> (Result<Grant, ConnectionPoolError>?, [Connection]) in
            if state.closed { return (.failure(ConnectionPoolError(code: .closed, pool: name)), []) }
            let grant = state.waiters.isEmpty ? state.grant(wanted, max: maxConnections) : nil
            return (grant.map { .success($0) }, state.takeDiscarded())
        }
        discarded.forEach { $0.close() }
        defer { report() }
        let grant: Grant
        if let fast { grant = try fast.get() } else { grant = try await wait(wanted) }
        return try await open(grant)
    }

    /// Turns a grant into connections, opening one in each slot; on a failure gives everything back.
    private func open(_ grant: Grant) async throws -> [Connection] {
        var connections = grant.connections
        for opened in 0..<grant.slots {
            do {
                connections.append(try await factory())
            } catch {
                connections.forEach(release)
                for _ in opened..<grant.slots { slotFreed() }
                throw error
            }
        }
        return connections
    }

    private func wait(_ wanted: Int) async throws -> Grant {
        let id = state.withLock { state -> Int in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let deadline = ContinuousClock.now.advanced(by: acquireTimeout)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                // Decided again under the lock that queues the waiter: what was given back since the first look is
                // served now, and a pool closed since refuses.
                let (outcome, discarded) = state.withLock { state -> (Result<Grant, any Error>?, [Connection]) in
                    if state.cancelledBeforeWaiting.remove(id) != nil { return (.failure(CancellationError()), []) }
                    if state.closed { return (.failure(ConnectionPoolError(code: .closed, pool: name)), []) }
                    if state.waiters.isEmpty, let grant = state.grant(wanted, max: maxConnections) {
                        return (.success(grant), state.takeDiscarded())
                    }
                    state.waiters.append(Waiter(id: id, wanted: wanted, deadline: deadline, continuation: continuation))
                    return (nil, state.takeDiscarded())
                }
                discarded.forEach { $0.close() }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let (waiter, served) = state.withLock { state -> (Waiter?, [(Waiter, Grant)]) in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else {
                    state.cancelledBeforeWaiting.insert(id)
                    return (nil, [])
                }
                let waiter = state.waiters.remove(at: index)
                // A waiter for several that leaves the head may let smaller ones behind it through.
                return (waiter, state.serveWaiters(max: maxConnections))
            }
            waiter?.continuation.resume(throwing: CancellationError())
            resume(served)
        }
    }

    private func release(_ connection: Connection) {
        let reusable = connection.isReusable
        let (keep, served, discarded) = state.withLock { state -> (Bool, [(Waiter, Grant)], [Connection]) in
            let keep = reusable && !state.closed
            if keep { state.idle.append(connection) } else { state.open -= 1 }
            return (keep, state.closed ? [] : state.serveWaiters(max: maxConnections), state.takeDiscarded())
        }
        if !keep { connection.close() }
        discarded.forEach { $0.close() }
        resume(served)
        report()
    }

    /// A slot was given up without a connection (a failed open): let the waiters use it.
    private func slotFreed() {
        let served = state.withLock { state -> [(Waiter, Grant)] in
            state.open -= 1
            return state.closed ? [] : state.serveWaiters(max: maxConnections)
        }
        resume(served)
    }

    private func resume(_ served: [(Waiter, Grant)]) {
        for (waiter, grant) in served { waiter.continuation.resume(returning: grant) }
    }

    private func expireWaiters(now: ContinuousClock.Instant) {
        let (expired, served) = state.withLock { state -> ([Waiter], [(Waiter, Grant)]) in
            let expired = state.waiters.filter { $0.deadline <= now }
            guard !expired.isEmpty else { return ([], []) }
            state.waiters.removeAll { $0.deadline <= now }
            return (expired, state.serveWaiters(max: maxConnections))
        }
        for waiter in expired {
            observer.onTimeout()
            waiter.continuation.resume(throwing: ConnectionPoolError(code: .timeout, pool: name))
        }
        resume(served)
        if !expired.isEmpty { report() }
    }

    private func report() {
        let (idle, inUse, waiting) = counts
        observer.onChange(idle, inUse, waiting)
    }
}
