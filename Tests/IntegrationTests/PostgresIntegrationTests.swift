import Crypto
import Foundation
import NIOPosix
import Platform
import PlatformTesting
import SharedModels
import Testing

extension Integration {
    @Suite struct PostgresTests {
        /// A client with its pool running for the duration of `body`.
        func withClient<T: Sendable>(
            maxConnections: Int = 4, _ body: (PostgresClient) async throws -> T
        ) async throws -> T {
            let client = PostgresClient(
                configuration: try TestEnvironment.postgres(), maxConnections: maxConnections, logger: TestEnvironment.logger)
            return try await withServices([client]) { try await body(client) }
        }

        /// A fresh schema, dropped afterwards.
        func withSchema<T: Sendable>(_ client: PostgresClient, _ body: (PostgresIdentifier) async throws -> T) async throws -> T {
            let schema = try PostgresIdentifier(TestEnvironment.uniqueName("test"))
            try await client.query("CREATE SCHEMA \(schema)")
            do {
                let result = try await body(schema)
                try await client.query("DROP SCHEMA \(schema) CASCADE")
                return result
            } catch {
                _ = try? await client.query("DROP SCHEMA \(schema) CASCADE")
                throw error
            }
        }

        @Test func parameterTypesAndNullsRoundTrip() async throws {
            try await withClient { client in
                let id = UUID()
                let when = try #require(PostgresTimestamp.parse("2024-02-29 23:59:59.123456+00"))
                let tags = ["a", "b c", "quote\"d", "back\\slash", ""]
                let payload = PostgresJSON(JSONValue.object(["k": .array([1, "two", nil])]))
                let missing: String? = nil
                let rows = try await client.query("""
                    SELECT \(Int64.max)::int8 AS big, \(42)::int4 AS small, \(2.5)::float8 AS real,
                           \("12345678901234567890.123456789")::numeric AS exact, \("héllo ✓")::text AS text,
                           \(true)::bool AS yes, \(when)::timestamptz AS at, \(id)::uuid AS id,
                           \(payload)::jsonb AS doc, \(tags)::text[] AS tags, \(missing)::text AS nothing,
                           \(PostgresBytes([0, 255, 10]))::bytea AS raw, DATE '2025-10-02' AS day
                    """)
                let row = try #require(rows.first)
                #expect(try row.decode("big", as: Int64.self) == .max)
                #expect(try row.decode("small", as: Int.self) == 42)
                #expect(try row.decode("real", as: Double.self) == 2.5)
                #expect(try row.decode("exact", as: String.self) == "12345678901234567890.123456789")
                #expect(try row.decode("text", as: String.self) == "héllo ✓")
                #expect(try row.decode("yes", as: Bool.self))
                #expect(try row.decode("at", as: Date.self) == when)
                #expect(try row.decode("id", as: UUID.self) == id)
                #expect(try row.decode("doc", as: PostgresJSON<JSONValue>.self).value == payload.value)
                #expect(try row.decode("tags", as: [String].self) == tags)
                #expect(try row.decode("nothing", as: String?.self) == nil)
                #expect(row.isNull("nothing"))
                #expect(throws: PostgresDecodingError.self) { try row.decode("nothing", as: String.self) }
                #expect(throws: PostgresDecodingError.self) { try row.decode("text", as: Int.self) }
                #expect(try row.decode("raw", as: PostgresBytes.self) == PostgresBytes([0, 255, 10]))
                #expect(try row.decode("day", as: Date.self) == PostgresTimestamp.parse("2025-10-02"))
            }
        }

        @Test func uniqueViolationMapsToItsCodeWithoutTheValue() async throws {
            try await withClient { client in
                try await withSchema(client) { schema in
                    let table = try PostgresIdentifier("users", schema: schema.name)
                    try await client.query("CREATE TABLE \(table) (email text CONSTRAINT users_email_key UNIQUE)")
                    try await client.query("INSERT INTO \(table) (email) VALUES (\("taken@example.com"))")
                    let error = await #expect(throws: PostgresError.self) {
                        try await client.query("INSERT INTO \(table) (email) VALUES (\("taken@example.com"))")
                    }
                    #expect(error?.code == .uniqueViolation)
                    #expect(error?.sqlState == "23505")
                    #expect(error?.constraint == "users_email_key")
                    #expect(error.map { "\($0)" }?.contains("taken@example.com") == false)
                    let missing = await #expect(throws: PostgresError.self) {
                        try await client.query("SELECT * FROM \(try PostgresIdentifier("absent", schema: schema.name))")
                    }
                    #expect(missing?.code == .undefinedTable)
                }
            }
        }

        @Test func transactionsRollBackOnError() async throws {
            struct Abort: Error {}
            try await withClient(maxConnections: 1) { client in
                try await withSchema(client) { schema in
                    let table = try PostgresIdentifier("items", schema: schema.name)
                    try await client.query("CREATE TABLE \(table) (id int PRIMARY KEY)")
                    await #expect(throws: Abort.self) {
                        try await client.withTransaction { connection in
                            try await connection.query("INSERT INTO \(table) VALUES (\(1))")
                            throw Abort()
                        }
                    }
                    await #expect(throws: PostgresError.self) {
                        try await client.withTransaction { connection in
                            try await connection.query("INSERT INTO \(table) VALUES (\(2))")
                            try await connection.query("INSERT INTO \(table) VALUES (\(2))")
                        }
                    }
                    _ = try await client.withTransaction { connection in
                        try await connection.query("INSERT INTO \(table) VALUES (\(3))")
                    }
                    let ids = try await client.query("SELECT id FROM \(table) ORDER BY id").map { try $0.decode("id", as: Int.self) }
                    #expect(ids == [3])
                }
            }
        }

        @Test func copyOf200kRowsInAndOutKeepsEveryByte() async throws {
            try await withClient(maxConnections: 2) { client in
                try await withSchema(client) { schema in
                    let source = try PostgresIdentifier("copy_source", schema: schema.name)
                    let target = try PostgresIdentifier("copy_target", schema: schema.name)
                    for table in [source, target] {
                        try await client.query("""
                            CREATE TABLE \(table) (id bigint PRIMARY KEY, label text, amount numeric(14,2), created_at timestamptz)
                            """)
                    }
                    let rowCount = 200_000
                    var sent = SHA256()
                    let stored = try await client.withConnection { connection in
                        try await connection.copyIn("COPY \(source.quoted) FROM STDIN") { writer in
                            var chunk = [UInt8]()
                            for id in 1...rowCount {
                                let line = "\(id)\tlabel \(id) with\\ttab\t\(id % 100_000).\(String(format: "%02d", id % 100))\t2024-01-01 00:00:00+00\n"
                                chunk += Array(line.utf8)
                                if chunk.count >= 64 * 1024 || id == rowCount {
                                    sent.update(data: chunk)
                                    try await writer.write(chunk)
                                    chunk.removeAll(keepingCapacity: true)
                                }
                            }
                        }
                    }
                    #expect(stored == Int64(rowCount))
                    var received = SHA256()
                    var largestChunk = 0
                    let bytes = try await client.withConnection { connection in
                        try await connection.copyOut("COPY (SELECT * FROM \(source.quoted) ORDER BY id) TO STDOUT", chunkSize: 64 * 1024) { chunk in
                            largestChunk = max(largestChunk, chunk.count)
                            received.update(data: chunk)
                        }
                    }
                    #expect(bytes > 0)
                    #expect(sent.finalize() == received.finalize())
                    // Bounded memory: chunks are whole rows of about the requested size, never the whole table.
                    #expect(largestChunk < 64 * 1024 + 4096)

                    let piped = try await client.withConnection { from in
                        try await client.withConnection { to in
                            try await PostgresCopyPipe.copy(
                                from: from, "COPY \(source.quoted) TO STDOUT", to: to, "COPY \(target.quoted) FROM STDIN")
                        }
                    }
                    #expect(piped == Int64(rowCount))
                    let checksum: (PostgresIdentifier) async throws -> String = { table in
                        try await client.query("""
                            SELECT md5(string_agg(id::text || label || amount::text || created_at::text, ',' ORDER BY id)) AS sum FROM \(table)
                            """).first!.decode("sum", as: String.self)
                    }
                    #expect(try await checksum(source) == checksum(target))
                }
            }
        }

        @Test func aCancelledCopyInStoresNothingEvenWhenItsProducerReturns() async throws {
            try await withClient(maxConnections: 1) { client in
                try await withSchema(client) { schema in
                    let table = try PostgresIdentifier("t", schema: schema.name)
                    try await client.query("CREATE TABLE \(table) (id int)")
                    let written = AsyncStream<Void>.makeStream()
                    let copy = Task {
                        try await client.withConnection { connection in
                            try await connection.copyIn("COPY \(table.quoted) FROM STDIN") { writer in
                                try await writer.write(Array("1\n2\n3\n".utf8))
                                written.continuation.yield()
                                // A producer that swallows the cancellation and returns as if it were done.
                                try? await Task.sleep(for: .seconds(30))
                            }
                        }
                    }
                    for await _ in written.stream { break }
                    copy.cancel()
                    await #expect(throws: CancellationError.self) { try await copy.value }
                    let count = try await client.query("SELECT count(*) AS n FROM \(table)").first!.decode("n", as: Int.self)
                    #expect(count == 0)
                }
            }
        }

        @Test func aFailedCopyInStoresNothingAndKeepsTheConnection() async throws {
            struct Broken: Error {}
            try await withClient(maxConnections: 1) { client in
                try await withSchema(client) { schema in
                    let table = try PostgresIdentifier("t", schema: schema.name)
                    try await client.query("CREATE TABLE \(table) (id int)")
                    await #expect(throws: Broken.self) {
                        try await client.withConnection { connection in
                            try await connection.copyIn("COPY \(table.quoted) FROM STDIN") { writer in
                                try await writer.write(Array("1\n2\n".utf8))
                                throw Broken()
                            }
                        }
                    }
                    await #expect(throws: PostgresError.self) {
                        try await client.withConnection { connection in
                            try await connection.copyIn("COPY \(table.quoted) FROM STDIN") { writer in
                                try await writer.write(Array("not a number\n".utf8))
                            }
                        }
                    }
                    let count = try await client.query("SELECT count(*) AS n FROM \(table)").first!.decode("n", as: Int.self)
                    #expect(count == 0)
                }
            }
        }

        @Test func fourConnectionsServeFiftyConcurrentQueries() async throws {
            try await withClient(maxConnections: 4) { client in
                let pids = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<50 {
                        group.addTask {
                            try await client.query("SELECT pg_backend_pid() AS pid, pg_sleep(0.02)").first!.decode("pid", as: Int.self)
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(pids.count == 50)
                #expect(Set(pids).count <= 4)
                #expect(client.pool.counts.inUse == 0)
            }
        }

        @Test func thePoolRecoversAfterAPostgresRestart() async throws {
            try await withClient(maxConnections: 2) { client in
                let before = try await client.query("SELECT pg_backend_pid() AS pid").first!.decode("pid", as: Int.self)
                try await TestEnvironment.restartPostgres()
                let after = try await client.query("SELECT pg_backend_pid() AS pid").first!.decode("pid", as: Int.self)
                #expect(before != after)
            }
        }

        @Test func racingMigratorsApplyEachMigrationOnce() async throws {
            try await withClient(maxConnections: 3) { client in
                let schemaName = TestEnvironment.uniqueName("migrate")
                let migrations = [
                    Migration(version: 1, name: "log", sql: "CREATE TABLE applied_log (version int, at timestamptz DEFAULT clock_timestamp());"),
                    Migration(version: 2, name: "first", sql: "INSERT INTO applied_log (version) VALUES (2); SELECT pg_sleep(0.2);"),
                    Migration(version: 3, name: "second", sql: "INSERT INTO applied_log (version) VALUES (3);"),
                ]
                let migrator = try Migrator(schema: schemaName, migrations: migrations, logger: TestEnvironment.logger)
                let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                    for _ in 0..<3 {
                        group.addTask { try await migrator.migrate(using: client) }
                    }
                    return try await group.reduce(into: [Int]()) { $0 += $1 }
                }
                #expect(applied.sorted() == [1, 2, 3])
                let schema = try PostgresIdentifier(schemaName)
                let log = try await client.query("SELECT version FROM \(schema).applied_log ORDER BY version")
                #expect(try log.map { try $0.decode("version", as: Int.self) } == [2, 3])
                #expect(try await migrator.migrate(using: client) == [])

                let edited = try Migrator(
                    schema: schemaName,
                    migrations: [migrations[0], Migration(version: 2, name: "first", sql: "SELECT 1;"), migrations[2]],
                    logger: TestEnvironment.logger)
                await #expect(throws: MigrationError.self) { try await edited.migrate(using: client) }

                let failing = try Migrator(
                    schema: schemaName,
                    migrations: migrations + [Migration(version: 4, name: "broken", sql: "INSERT INTO applied_log (version) VALUES (4); SELECT * FROM nowhere;")],
                    logger: TestEnvironment.logger)
                await #expect(throws: PostgresError.self) { try await failing.migrate(using: client) }
                let versions = try await client.query("SELECT version FROM \(schema).schema_migrations ORDER BY version")
                #expect(try versions.map { try $0.decode("version", as: Int.self) } == [1, 2, 3])
                let afterFailure = try await client.query("SELECT count(*) AS n FROM \(schema).applied_log").first!.decode("n", as: Int.self)
                #expect(afterFailure == 2)
                try await client.query("DROP SCHEMA \(schema) CASCADE")
            }
        }

        @Test func aCancelledQueryIsCancelledOnTheServer() async throws {
            try await withClient(maxConnections: 1) { client in
                let task = Task { try await client.query("SELECT pg_sleep(30)") }
                try await Task.sleep(for: .milliseconds(200))
                let start = ContinuousClock.now
                task.cancel()
                let error = await #expect(throws: PostgresError.self) { try await task.value }
                #expect(error?.code == .queryCanceled)
                #expect(ContinuousClock.now - start < .seconds(10))
                #expect(try await client.query("SELECT 1 AS one").first!.decode("one", as: Int.self) == 1)
            }
        }

        @Test func wrongPasswordAndUnreachableServerAreToldApart() async throws {
            let threadPool = NIOThreadPool(numberOfThreads: 1)
            threadPool.start()
            var wrong = try TestEnvironment.postgres()
            wrong.password = "definitely-not-the-password"
            let authError = await #expect(throws: PostgresError.self) {
                try await PostgresConnection.connect(wrong, threadPool: threadPool)
            }
            #expect(authError?.code == .authenticationFailed)
            #expect(authError.map { "\($0)" }?.contains("definitely-not-the-password") == false)
            var unreachable = try TestEnvironment.postgres()
            unreachable.port = 1
            let connectError = await #expect(throws: PostgresError.self) {
                try await PostgresConnection.connect(unreachable, threadPool: threadPool)
            }
            #expect(connectError?.code == .connectionFailure)
            try await threadPool.shutdownGracefully()
        }

        @Test func connectionsCarryKeepalivesAndAUserTimeout() async throws {
            let threadPool = NIOThreadPool(numberOfThreads: 1)
            threadPool.start()
            var configuration = try TestEnvironment.postgres()
            configuration.liveness = .init(idleSeconds: 17, intervalSeconds: 4, count: 5, userTimeoutMilliseconds: 12_345)
            let connection = try await PostgresConnection.connect(configuration, threadPool: threadPool)
            #expect(connection.socketLiveness == configuration.liveness)
            connection.close()
            try await threadPool.shutdownGracefully()
        }
    }
}
