import AsyncAlgorithms
import Glibc

extension PostgresConnection {
    /// Streams the output of a `COPY ... TO STDOUT` statement in chunks of whole rows of about `chunkSize` bytes.
    ///
    /// Memory stays bounded: the next chunk is read only after `consume` returns. Returns the bytes read.
    @discardableResult
    public func copyOut(
        _ sql: String, chunkSize: Int = 256 * 1024, into consume: (_ chunk: [UInt8]) async throws -> Void
    ) async throws -> Int64 {
        try await blocking { try self.startCopyBlocking(sql, expectingIn: false) }
        var bytes: Int64 = 0
        var finished = false
        do {
            while !finished {
                let chunk = try await blocking { try self.readCopyChunkBlocking(limit: chunkSize) }
                finished = chunk.finished
                guard !chunk.rows.isEmpty else { continue }
                bytes += Int64(chunk.rows.count)
                try await consume(chunk.rows)
            }
        } catch {
            // The COPY was left half-read; the protocol state is not worth recovering.
            close()
            throw error
        }
        return bytes
    }

    /// Runs a `COPY ... FROM STDIN` statement fed by `produce`, and returns the number of rows stored.
    ///
    /// If `produce` throws, or the task is cancelled, the COPY is aborted (nothing is stored) and the error is
    /// rethrown.
    @discardableResult
    public func copyIn(_ sql: String, from produce: (CopyInWriter) async throws -> Void) async throws -> Int64 {
        try await blocking { try self.startCopyBlocking(sql, expectingIn: true) }
        do {
            try await produce(CopyInWriter(connection: self))
            // A cancelled task never ends its COPY as a success, whatever `produce` did with the cancellation.
            try Task.checkCancellation()
        } catch {
            if Task.isCancelled {
                // No more libpq calls run for a cancelled task: dropping the connection makes the server discard
                // the COPY.
                close()
            } else {
                _ = try? await blocking { try self.endCopyInBlocking(abortReason: "aborted by the client") }
            }
            throw error
        }
        return try await blocking { try self.endCopyInBlocking(abortReason: nil) }
    }
}

/// Sends data into a running `COPY ... FROM STDIN`.
public struct CopyInWriter: Sendable {
    let connection: PostgresConnection

    /// Sends bytes in COPY format (text or CSV as the statement says); rows may span calls.
    public func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        try await connection.blocking { try connection.putCopyDataBlocking(bytes) }
    }
}

/// Moves data between two PostgreSQL connections with COPY, reading and writing at the same time.
public enum PostgresCopyPipe {
    /// Runs `sourceSQL` (`COPY ... TO STDOUT`) on `source` into `targetSQL` (`COPY ... FROM STDIN`) on `target`.
    ///
    /// One chunk is written while the next is read; at most two chunks are in memory. Returns rows stored.
    /// `written` is told the size of each chunk once the target has taken it (for progress reports).
    @discardableResult
    public static func copy(
        from source: PostgresConnection, _ sourceSQL: String,
        to target: PostgresConnection, _ targetSQL: String,
        chunkSize: Int = 256 * 1024, written: @Sendable ([UInt8]) -> Void = { _ in }
    ) async throws -> Int64 {
        let chunks = AsyncThrowingChannel<[UInt8], any Error>()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await source.copyOut(sourceSQL, chunkSize: chunkSize) { chunk in
                        await chunks.send(chunk)
                        try Task.checkCancellation()
                    }
                    chunks.finish()
                } catch {
                    chunks.fail(error)
                    throw error
                }
            }
            do {
                let rows = try await target.copyIn(targetSQL) { writer in
                    for try await chunk in chunks {
                        try await writer.write(chunk)
                        written(chunk)
                    }
                }
                try await group.waitForAll()
                return rows
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }
}

/// Facts about COPY text (PostgreSQL's text format, which escapes newlines inside values).
public enum CopyText {
    /// The rows in `chunk`: one per newline. Scans with `memchr`, which stays fast in debug builds, where a Swift loop
    /// over every byte cost seconds per million rows.
    public static func rowCount(in chunk: [UInt8]) -> Int {
        chunk.withUnsafeBytes { bytes in
            guard var cursor = bytes.baseAddress else { return 0 }
            let end = cursor + bytes.count
            var rows = 0
            while cursor < end, let found = memchr(cursor, 0x0A, end - cursor) {
                rows += 1
                cursor = UnsafeRawPointer(found) + 1
            }
            return rows
        }
    }
}
