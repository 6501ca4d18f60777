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

    private struct Waiter {
        let id: Int
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Lease, any Error>
    }

    private enum Lease {
        case connection(Connection)
        case create
    }

    private struct State {
        var idle: [Connection] = []
        var open = 0
        var waiters: [Waiter] = []
        var cancelledBeforeWaiting: Set<Int> = []
        var nextWaiterID = 0
        var closed = false
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
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
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

    /// Closes idle connections, fails waiters, and closes in-use connections when they come back.
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

    private enum Action {
        case use(Connection)
        case create
        case wait(Int)
        case fail(ConnectionPoolError)
    }

    private func acquire() async throws -> Connection {
        var discarded: [Connection] = []
        let action = state.withLock { state -> Action in
            if state.closed { return .fail(ConnectionPoolError(code: .closed, pool: name)) }
            while let candidate = state.idle.popLast() {
                if candidate.isReusable { return .use(candidate) }
                state.open -= 1
                discarded.append(candidate)
            }
            if state.open < maxConnections {
                state.open += 1
                return .create
            }
            state.nextWaiterID += 1
            return .wait(state.nextWaiterID)
        }
        discarded.forEach { $0.close() }
        defer { report() }
        switch action {
        case .use(let connection):
            return connection
        case .create:
            return try await create()
        case .fail(let error):
            throw error
        case .wait(let id):
            switch try await wait(id: id) {
            case .connection(let connection): return connection
            case .create: return try await create()
            }
        }
    }

    private func create() async throws -> Connection {
        do {
            return try await factory()
        } catch {
            slotFreed()
            throw error
        }
    }

    private func wait(id: Int) async throws -> Lease {
        let deadline = ContinuousClock.now.advanced(by: acquireTimeout)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
                let cancelled = state.withLock { state -> Bool in
                    if state.cancelledBeforeWaiting.remove(id) != nil { return true }
                    state.waiters.append(Waiter(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else {
                    state.cancelledBeforeWaiting.insert(id)
                    return nil
                }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private func release(_ connection: Connection) {
        let reusable = connection.isReusable
        let handedTo = state.withLock { state -> Waiter? in
            guard reusable, !state.closed else { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.idle.append(connection)
            return nil
        }
        if let handedTo {
            handedTo.continuation.resume(returning: .connection(connection))
        } else if !reusable || state.withLock({ $0.closed }) {
            connection.close()
            slotFreed()
        }
        report()
    }

    /// A connection slot was given up: let the longest waiter open a new connection in it.
    private func slotFreed() {
        let waiter = state.withLock { state -> Waiter? in
            state.open -= 1
            guard !state.closed, !state.waiters.isEmpty, state.open < maxConnections else { return nil }
            state.open += 1
            return state.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: .create)
    }

    private func expireWaiters(now: ContinuousClock.Instant) {
        let expired = state.withLock { state -> [Waiter] in
            let expired = state.waiters.filter { $0.deadline <= now }
            if !expired.isEmpty { state.waiters.removeAll { $0.deadline <= now } }
            return expired
        }
        for waiter in expired {
            observer.onTimeout()
            waiter.continuation.resume(throwing: ConnectionPoolError(code: .timeout, pool: name))
        }
        if !expired.isEmpty { report() }
    }

    private func report() {
        let (idle, inUse, waiting) = counts
        observer.onChange(idle, inUse, waiting)
    }
}
