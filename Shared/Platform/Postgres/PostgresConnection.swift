internal import CLibPQ
import Logging
import NIOPosix
import Synchronization

/// One libpq connection. Every blocking libpq call runs on the given `NIOThreadPool`.
///
/// A connection is used by one task at a time (the pool hands it out exclusively); only
/// ``cancelCurrentQuery()`` may be called from elsewhere, which libpq allows.
public final class PostgresConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    private let cancelHandle: OpaquePointer?
    private let threadPool: NIOThreadPool
    private let closed = Atomic<Bool>(false)
    /// The statement now running (0: none), and the lock a cancel holds while it is sent: a statement that has
    /// finished cannot be cancelled, and the connection goes back to the pool only after it is marked finished.
    private let running = Mutex<UInt64>(0)
    private let statements = Atomic<UInt64>(0)

    private init(handle: OpaquePointer, threadPool: NIOThreadPool) {
        self.handle = handle
        self.cancelHandle = PQgetCancel(handle)
        self.threadPool = threadPool
    }

    deinit {
        if !closed.load(ordering: .acquiring) {
            PQfinish(handle)
        }
        if let cancelHandle { PQfreeCancel(cancelHandle) }
    }

    /// Opens a connection; the connect itself runs on `threadPool`.
    public static func connect(
        _ configuration: PostgresConfiguration, threadPool: NIOThreadPool
    ) async throws -> PostgresConnection {
        try await threadPool.runIfActive {
            try connectBlocking(configuration, threadPool: threadPool)
        }
    }

    static func connectBlocking(_ configuration: PostgresConfiguration, threadPool: NIOThreadPool) throws
        -> PostgresConnection
    {
        let parameters = configuration.libpqParameters
        let keywords = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordPointers = keywords.map { UnsafePointer($0) } + [nil]
        let valuePointers = values.map { UnsafePointer($0) } + [nil]
        guard let handle = PQconnectdbParams(keywordPointers, valuePointers, 0) else {
            throw PostgresError(code: .connectionFailure, reason: "libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle))
            PQfinish(handle)
            throw PostgresError.connectionFailure(libpqMessage: message)
        }
        return PostgresConnection(handle: handle, threadPool: threadPool)
    }

    // MARK: Queries

    /// Runs one statement with bound parameters and returns its rows.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await blocking { try self.executeBlocking(query) }
    }

    /// Runs SQL text that may hold several statements and no parameters (migrations, DDL).
    public func executeScript(_ sql: String) async throws {
        try await blocking { try self.executeScriptBlocking(sql) }
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func withTransaction<T: Sendable>(
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await query("BEGIN")
        let result: T
        do {
            result = try await body(self)
        } catch {
            // A failed rollback leaves the connection non-idle, and the pool then discards it.
            _ = try? await query("ROLLBACK")
            throw error
        }
        try await query("COMMIT")
        return result
    }

    /// Asks the server to cancel the statement now running on this connection, if one is. Safe from any thread.
    public func cancelCurrentQuery() {
        running.withLock { current in
            if current != 0 { sendCancel() }
        }
    }

    /// Cancels `statement` only while it is the one running: a cancel that comes late never reaches the next
    /// statement, which may be another borrower's.
    private func cancel(statement: UInt64) {
        running.withLock { current in
            if current == statement { sendCancel() }
        }
    }

    private func sendCancel() {
        guard let cancelHandle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
    }

    /// Closes the connection. Idempotent.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        PQfinish(handle)
    }

    /// True when the connection is open, outside any transaction, and has not been closed by the server
    /// while idle (a restart sends a termination notice and closes the socket; this sees it without a round trip).
    public var isReusable: Bool {
        guard !closed.load(ordering: .acquiring), PQstatus(handle) == CONNECTION_OK,
            PQtransactionStatus(handle) == PQTRANS_IDLE
        else { return false }
        if platform_pq_socket_readable(handle) != 0 {
            guard PQconsumeInput(handle) != 0, PQstatus(handle) == CONNECTION_OK else { return false }
            // Asynchronous notices are fine; anything else pending means the server is hanging up.
            while let notify = PQnotifies(handle) { PQfreemem(notify) }
            return PQisBusy(handle) == 0 && platform_pq_socket_readable(handle) == 0
        }
        return true
    }

    /// The TCP options libpq set on the socket (`nil` on a unix socket), for tests of ``PostgresConfiguration/Liveness``.
    package var socketLiveness: PostgresConfiguration.Liveness? {
        let socket = PQsocket(handle)
        func option(_ level: Int32, _ name: Int32) -> Int? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(socket, level, name, &value, &length) == 0 ? Int(value) : nil
        }
        guard socket >= 0, option(SOL_SOCKET, SO_KEEPALIVE) == 1,
              let idle = option(Int32(IPPROTO_TCP), TCP_KEEPIDLE), let interval = option(Int32(IPPROTO_TCP), TCP_KEEPINTVL),
              let count = option(Int32(IPPROTO_TCP), TCP_KEEPCNT), let timeout = option(Int32(IPPROTO_TCP), TCP_USER_TIMEOUT)
        else { return nil }
        return .init(idleSeconds: idle, intervalSeconds: interval, count: count, userTimeoutMilliseconds: timeout)
    }

    /// The server's version number, for example 150018.
    public var serverVersion: Int { Int(PQserverVersion(handle)) }

    func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        guard !closed.load(ordering: .acquiring) else {
            throw PostgresError(code: .connectionFailure, reason: "connection is closed")
        }
        let statement = statements.add(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await threadPool.runIfActive {
                self.running.withLock { $0 = statement }
                defer { self.running.withLock { $0 = 0 } }
                return try work()
            }
        } onCancel: {
            self.cancel(statement: statement)
        }
    }

    func executeBlocking(_ query: PostgresQuery) throws -> PostgresRows {
        let result: OpaquePointer?
        if query.binds.isEmpty {
            result = PQexecParams(handle, query.sql, 0, nil, nil, nil, nil, 0)
        } else {
            // Text parameters end at a NUL byte on their way through C: refuse rather than silently truncate.
            if query.binds.contains(where: { $0?.utf8.contains(0) == true }) {
                throw PostgresError(code: .invalidInput, reason: "a text parameter contains a NUL character")
            }
            let values = query.binds.map { $0.map { strdup($0) } ?? nil }
            defer { values.forEach { free($0) } }
            let pointers = values.map { $0.map { UnsafePointer($0) } }
            result = PQexecParams(handle, query.sql, Int32(pointers.count), nil, pointers, nil, nil, 0)
        }
        guard let result else { throw connectionLostError() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.rows(from: result)
        default:
            throw error(from: result)
        }
    }

    func executeScriptBlocking(_ sql: String) throws {
        guard let result = PQexec(handle, sql) else { throw connectionLostError() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return
        default: throw error(from: result)
        }
    }

    private static func rows(from result: OpaquePointer) -> PostgresRows {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        let types = (0..<columnCount).map { (oid: UInt32(PQftype(result, Int32($0))), modifier: Int32(PQfmod(result, Int32($0)))) }
        var values: [[String?]] = []
        values.reserveCapacity(rowCount)
        for row in 0..<Int32(rowCount) {
            var rowValues: [String?] = []
            rowValues.reserveCapacity(columnCount)
            for column in 0..<Int32(columnCount) {
                if PQgetisnull(result, row, column) != 0 {
                    rowValues.append(nil)
                } else {
                    let length = Int(PQgetlength(result, row, column))
                    let pointer = UnsafeRawPointer(PQgetvalue(result, row, column)!)
                    rowValues.append(String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self))
                }
            }
            values.append(rowValues)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? rowCount
        return PostgresRows(columns: columns, columnTypes: types, values: values, affectedRows: affected)
    }

    func error(from result: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        guard let sqlState = field("C") else {
            if PQstatus(handle) != CONNECTION_OK { return connectionLostError() }
            let message = String(cString: PQresultErrorMessage(result))
            return PostgresError(code: .other, reason: "libpq reported an error", serverMessage: message)
        }
        return PostgresError(
            code: PostgresError.code(forSQLState: sqlState), sqlState: sqlState, constraint: field("n"),
            table: field("t"), column: field("c"), serverMessage: field("M")
        )
    }

    func connectionLostError() -> PostgresError {
        PostgresError(
            code: .connectionFailure, reason: "connection lost", serverMessage: String(cString: PQerrorMessage(handle))
        )
    }

    // MARK: COPY primitives (blocking; used by PostgresConnection+Copy)

    /// Starts a COPY and checks the server entered the expected mode.
    func startCopyBlocking(_ sql: String, expectingIn: Bool) throws {
        guard let result = PQexec(handle, sql) else { throw connectionLostError() }
        defer { PQclear(result) }
        let expected = expectingIn ? PGRES_COPY_IN : PGRES_COPY_OUT
        guard PQresultStatus(result) == expected else {
            if PQresultStatus(result) == PGRES_FATAL_ERROR { throw error(from: result) }
            // The statement did something else (maybe a COPY in the other direction): the protocol state is
            // unknown, so the connection is given up rather than reused.
            close()
            throw PostgresError(code: .other, reason: "statement is not a COPY \(expectingIn ? "FROM STDIN" : "TO STDOUT")")
        }
    }

    /// Reads whole rows until at least `limit` bytes are gathered or the COPY ends (`finished`).
    func readCopyChunkBlocking(limit: Int) throws -> (rows: [UInt8], finished: Bool) {
        var chunk = [UInt8]()
        chunk.reserveCapacity(limit + 4096)
        while chunk.count < limit {
            var buffer: UnsafeMutablePointer<CChar>?
            let length = PQgetCopyData(handle, &buffer, 0)
            if length > 0, let buffer {
                buffer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
                    chunk.append(contentsOf: UnsafeBufferPointer(start: $0, count: Int(length)))
                }
                PQfreemem(buffer)
            } else if length == -1 {
                try finishCommandBlocking()
                return (chunk, true)
            } else {
                throw connectionLostError()
            }
        }
        return (chunk, false)
    }

    /// Sends one chunk of COPY data.
    func putCopyDataBlocking(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
        }
        guard sent == 1 else { throw connectionLostError() }
    }

    /// Ends a COPY FROM STDIN (or aborts it with a reason) and returns the number of rows stored.
    func endCopyInBlocking(abortReason: String?) throws -> Int64 {
        guard PQputCopyEnd(handle, abortReason) == 1 else { throw connectionLostError() }
        return try finishCommandBlocking()
    }

    @discardableResult
    private func finishCommandBlocking() throws -> Int64 {
        var failure: PostgresError?
        var rows: Int64 = 0
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_COMMAND_OK {
                rows = Int64(String(cString: PQcmdTuples(result))) ?? 0
            } else if failure == nil {
                failure = error(from: result)
            }
            PQclear(result)
        }
        if let failure { throw failure }
        return rows
    }
}
