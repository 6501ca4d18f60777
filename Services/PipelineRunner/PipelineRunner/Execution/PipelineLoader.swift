import AsyncAlgorithms
import Foundation
import Logging
import Platform
import SharedModels

/// The work of a pipeline run into PostgreSQL targets: compiles the deployed specification into one query on the
/// source, streams its result with `COPY` into a staging table on each target, and applies it in one transaction
/// that also records the run in the target's ledger. A failure or a cancel at any point leaves the target as it was.
struct PipelineLoader: RunWork {
    let runs: any RunRepository
    let pipelines: any PipelineRepository
    let databases: CustomerDatabases
    /// The HTTP client for ClickHouse targets.
    let clickHouse: CurlHTTPClient
    /// Connections a PostgreSQL target copies with when its pipeline does not say (`parallelism`).
    let defaultParallelism: Int
    let logger: Logger

    /// The load itself: source to staging, staging to target, for every target.
    func perform(_ run: Run, progress: LoadProgress) async throws -> RunOutcome {
        guard let pipelineID = run.pipelineID, let number = run.pipelineVersion,
              let version = try await pipelines.version(id: pipelineID, number: number) else {
            throw RunFailure("the run names no deployed version of its pipeline")
        }
        let specification = version.specification
        guard let source = specification.sources.first, let sourceID = source.connectionID else {
            throw RunFailure("the pipeline has no source connection")
        }
        var outcome = RunOutcome(status: .success)
        for target in specification.targets {
            guard let targetID = target.connectionID else { throw RunFailure("target \(target.id) has no connection") }
            let loaded: RunOutcome
            switch target.type {
            case .postgresql: loaded = try await loadIntoPostgres(run, specification, from: sourceID, into: target, connection: targetID, progress: progress)
            case .clickhouse: loaded = try await loadIntoClickHouse(run, specification, from: sourceID, into: target, connection: targetID, progress: progress)
            case .file: throw RunFailure("file targets are not run by this engine yet")
            }
            outcome.rowsProcessed += loaded.rowsProcessed
            outcome.bytesProcessed += loaded.bytesProcessed
            outcome.metrics.extractionMS += loaded.metrics.extractionMS
            outcome.metrics.loadingMS += loaded.metrics.loadingMS
        }
        return outcome
    }

    /// The source side of one load, inside the source's read-only snapshot: the compiled plan, the query `COPY`
    /// runs for the whole table or one block range (its values bound through transaction settings), the values
    /// those settings hold, and the result's columns with their types.
    private struct SourceRead {
        var plan: ExecutionPlan
        var columns: [PostgresLoad.Column]
        var values: [String?]
        var copyQuery: @Sendable (BlockRange?) throws -> String
    }

    /// Opens the source's snapshot and compiles the pipeline for it; `cursor` is the last value the target committed.
    private func read(_ run: Run, _ specification: PipelineSpecification, cursor: String?, on source: PostgresConnection) async throws -> SourceRead {
        try await source.query("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ")
        let sourceColumns = try await columns(of: specification, on: source)
        let plan = try Self.compile(specification, sourceColumns: sourceColumns, afterCursor: cursor != nil)
        let values = try bindingValues(plan.query.bindings, parameters: run.parameters, cursor: cursor)
        let columns = try await resultColumns(of: plan.query.sql, values: values, on: source)
        let types = try await placeholderTypes(of: plan.query, on: source)
        try await bind(values, on: source)
        try await runs.note(id: run.id, compiledSQL: plan.query.sql, log: "reading the source with the compiled query", level: .info)
        try await reportNullCursors(of: specification, plan: plan, on: source, run: run)
        let afterCursor = cursor != nil
        return SourceRead(plan: plan, columns: columns, values: values) { range in
            // `COPY (query)` takes no parameters: each placeholder reads its setting back, cast to the type PostgreSQL
            // inferred for it. Nothing a user gave is spliced into the text.
            try Self.compile(specification, sourceColumns: sourceColumns, afterCursor: afterCursor, range: range) { index in
                values[index - 1] == nil ? "CAST(NULL AS \(types[index - 1]))" : "CAST(current_setting('platform_run.p\(index)') AS \(types[index - 1]))"
            }.query.sql
        }
    }

    /// Logs that a run's load was found committed already, and what it loaded.
    private func alreadyLoaded(_ run: Run, into name: String, rows: Int64) async throws -> RunOutcome {
        // This run committed before its runner died: nothing is loaded twice.
        try await runs.note(id: run.id, compiledSQL: nil, log: "already loaded into \(name) (\(rows) rows): not loaded again", level: .warning)
        return RunOutcome(status: .success, rowsProcessed: rows)
    }

    private func loadIntoPostgres(_ run: Run, _ specification: PipelineSpecification, from sourceID: Int64, into target: Target,
                                  connection targetID: Int64, progress: LoadProgress) async throws -> RunOutcome {
        let source = try await databases.connect(sourceID)
        defer { source.close() }
        let destination = try await databases.connect(targetID)
        defer { destination.close() }

        let bytesBefore = progress.current.bytes
        let table = try SQLTableName(parsing: target.config.table)
        var load = PostgresLoad(target: table, columns: [], mode: target.config.mode, key: target.config.key,
                                createTable: target.config.createTable, runID: run.publicID,
                                pipelineID: PublicID.pipeline.format(run.pipelineID ?? 0), targetID: target.id)
        try await destination.query(PostgresQuery(unsafeSQL: load.createLedger))
        if let loaded = try await destination.query(PostgresQuery(unsafeSQL: "SELECT rows FROM \(load.ledger.quoted) WHERE run_id = $1 AND target_id = $2",
                                                                      binds: [run.publicID, target.id])).first {
            return try await alreadyLoaded(run, into: table.displayName, rows: try loaded.decode("rows", as: Int64.self))
        }
        let cursor = try await destination.query(PostgresQuery(unsafeSQL: """
            SELECT cursor_value FROM \(load.ledger.quoted) WHERE pipeline_id = $1 AND target_id = $2 AND cursor_value IS NOT NULL
            ORDER BY loaded_at DESC LIMIT 1
            """, binds: [load.pipelineID, target.id])).first.map { try $0.decode("cursor_value", as: String.self) }

        let read = try await read(run, specification, cursor: cursor, on: source)
        load = PostgresLoad(target: table, columns: read.columns, mode: load.mode, key: load.key, createTable: load.createTable,
                            runID: load.runID, pipelineID: load.pipelineID, targetID: load.targetID)
        let targetExists = try await destination.query(PostgresQuery(unsafeSQL: "SELECT to_regclass($1) IS NOT NULL AS found",
                                                                     binds: [table.quoted])).first!.decode("found", as: Bool.self)
        guard targetExists || load.createTable else {
            throw RunFailure("table \(table.displayName) does not exist; set create_table to true to have it created")
        }
        let swappable = targetExists && load.mode == .replace && destination.serverVersion >= 140_000
            ? try await isSwappable(load, on: destination)
            : false
        let strategy = load.strategy(targetExists: targetExists, swappable: swappable)
        try await sweepStages(beside: table, on: destination)
        for statement in load.createStage(strategy) { try await destination.query(PostgresQuery(unsafeSQL: statement)) }
        let extraction = ContinuousClock.now
        let rows: Int64
        do {
            rows = try await copy(run, specification, read, sourceID: sourceID, from: source, into: load, on: destination, targetID: targetID,
                                  parallelism: target.config.parallelism ?? defaultParallelism, progress: progress)
            try await source.query("COMMIT")
        } catch {
            source.cancelCurrentQuery()
            destination.cancelCurrentQuery()
            throw error
        }
        let loading = ContinuousClock.now
        let cursorValue = try await nextCursor(read.plan, stage: load.stage, on: destination)
        try await destination.withTransaction { connection in
            for statement in try await applying(load, strategy, targetExists: targetExists, on: connection) {
                try await connection.query(PostgresQuery(unsafeSQL: statement))
            }
            try await connection.query(PostgresQuery(unsafeSQL: """
                INSERT INTO \(load.ledger.quoted) (run_id, target_id, pipeline_id, rows, cursor_value) VALUES ($1, $2, $3, $4, $5)
                """, binds: [run.publicID, target.id, load.pipelineID, rows, cursorValue]))
        }
        if strategy != .insert {
            // A new table has no statistics yet: gather them now rather than leave the first queries to guess.
            do {
                try await destination.query(PostgresQuery(unsafeSQL: "ANALYZE \(load.target.quoted)"))
            } catch {
                logger.notice("could not analyze a loaded table", metadata: ["table": "\(table.displayName)", "error": "\(error)"])
            }
        }
        return RunOutcome(status: .success, rowsProcessed: rows, bytesProcessed: progress.current.bytes - bytesBefore, metrics: RunMetrics(
            extractionMS: RunExecutor.milliseconds(extraction.duration(to: loading)), loadingMS: RunExecutor.milliseconds(loading.duration(to: .now))))
    }

    /// The statements that put a staged load in place, inside the applying transaction. A swap locks the target
    /// and checks again that nothing was made to depend on it meanwhile; if something was, the rows are inserted instead.
    private func applying(_ load: PostgresLoad, _ strategy: PostgresLoad.Strategy, targetExists: Bool,
                          on connection: PostgresConnection) async throws -> [String] {
        switch strategy {
        case .rename:
            return [load.renameStage]
        case .insert:
            return load.apply(targetExists: targetExists)
        case .swap:
            // Readers queue behind the lock, and it behind them: a target held longer than this fails the run.
            try await connection.query("SET LOCAL lock_timeout = '60s'")
            try await connection.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(load.target.quoted) IN ACCESS EXCLUSIVE MODE"))
            let target = load.target.quoted
            guard try await isSwappable(load, on: connection) else { return load.apply(targetExists: true) }
            let grants = try await connection.query(PostgresQuery(unsafeSQL: load.grants, binds: [target])).map { try $0.decode("statement", as: String.self) }
            let names = try await connection.query(PostgresQuery(unsafeSQL: load.indexNames, binds: [load.stage.quoted, target]))
                .map { (fresh: try $0.decode("fresh", as: String.self), kept: try $0.decode("kept", as: String.self)) }
            return load.swap(grants: grants, indexNames: names)
        }
    }

    private func isSwappable(_ load: PostgresLoad, on connection: PostgresConnection) async throws -> Bool {
        try await connection.query(PostgresQuery(unsafeSQL: load.swappable, binds: [load.target.quoted, load.columns.map(\.name), load.columns.map(\.type)]))
            .first!.decode("swappable", as: Bool.self)
    }

    /// Streams the result into the stage: through `source` and `destination`, or, when the pipeline can be split and
    /// `parallelism` asks for it, as block ranges of the source table over that many pairs of connections reading
    /// one snapshot (`pg_export_snapshot`). Each range is checked by its row count: the rows read from the source
    /// against the rows the target stored. Returns the rows stored.
    private func copy(_ run: Run, _ specification: PipelineSpecification, _ read: SourceRead, sourceID: Int64, from source: PostgresConnection,
                      into load: PostgresLoad, on destination: PostgresConnection, targetID: Int64, parallelism: Int,
                      progress: LoadProgress) async throws -> Int64 {
        var ranges = [BlockRange(start: 0, end: nil)]
        if parallelism > 1, RangeSplitter.canSplit(specification), source.serverVersion >= 140_000,
           let table = specification.sources.first?.config.table {
            let blocks = try await source.query(PostgresQuery(unsafeSQL: """
                SELECT pg_relation_size(to_regclass($1)) / current_setting('block_size')::bigint AS blocks
                """, binds: [try SQLTableName(parsing: table).quoted])).first!.decode("blocks", as: Int64.self)
            ranges = RangeSplitter.ranges(blocks: blocks, parts: parallelism)
        }
        guard ranges.count > 1 else {
            return try await copyCounted(from: source, "COPY (\(try read.copyQuery(nil))) TO STDOUT", to: destination, load.copyIn,
                                         range: nil, progress: progress)
        }
        let snapshot = try await source.query("SELECT pg_export_snapshot() AS id").first!.decode("id", as: String.self)
        var helpers: [(source: PostgresConnection, target: PostgresConnection)] = []
        defer { helpers.forEach { $0.source.close(); $0.target.close() } }
        for _ in ranges.dropFirst() {
            let helper = try await databases.connect(sourceID)
            let target = try await databases.connect(targetID)
            helpers.append((helper, target))
            // The same snapshot and the same bound values as the first connection.
            try await helper.query("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ")
            try await helper.query(PostgresQuery(unsafeSQL: "SET TRANSACTION SNAPSHOT '\(snapshot.filter { $0.isHexDigit || $0 == "-" })'"))
            try await bind(read.values, on: helper)
        }
        try await runs.note(id: run.id, compiledSQL: nil, log: "copying in \(ranges.count) block ranges over \(ranges.count) connections", level: .info)
        let pairs = [(source, destination)] + helpers.map { ($0.source, $0.target) }
        let rows = try await withThrowingTaskGroup(of: Int64.self) { group in
            for (range, pair) in zip(ranges, pairs) {
                let sql = "COPY (\(try read.copyQuery(range))) TO STDOUT"
                group.addTask { try await copyCounted(from: pair.0, sql, to: pair.1, load.copyIn, range: range, progress: progress) }
            }
            do {
                var total: Int64 = 0
                for try await stored in group { total += stored }
                return total
            } catch {
                for pair in pairs {
                    pair.0.cancelCurrentQuery()
                    pair.1.cancelCurrentQuery()
                }
                throw error
            }
        }
        for helper in helpers { try await helper.source.query("COMMIT") }
        return rows
    }

    /// One COPY pipe whose rows read are checked against the rows the target stored.
    private func copyCounted(from source: PostgresConnection, _ sourceSQL: String, to destination: PostgresConnection, _ targetSQL: String,
                             range: BlockRange?, progress: LoadProgress) async throws -> Int64 {
        let counted = LoadProgress()
        let stored = try await PostgresCopyPipe.copy(from: source, sourceSQL, to: destination, targetSQL) { chunk in
            let rows = Int64(CopyText.rowCount(in: chunk))
            counted.add(rows: rows, bytes: Int64(chunk.count))
            progress.add(rows: rows, bytes: Int64(chunk.count))
        }
        let sent = counted.current.rows
        guard sent == stored else {
            throw RunFailure("\(range.map { "blocks from \($0.start)" } ?? "the copy"): \(sent) rows read from the source, \(stored) stored; nothing was applied")
        }
        return stored
    }

    /// Rows go to ClickHouse in blocks of at least this many rows (or of ``clickHouseBlockBytes``, whichever comes
    /// first): ClickHouse writes a part per insert, so small inserts make work for its merges.
    static let clickHouseBlockRows = 100_000
    static let clickHouseBlockBytes = 16 << 20
    /// What one read of `COPY ... TO STDOUT` returns at most.
    static let copyChunkBytes = 256 << 10

    private func loadIntoClickHouse(_ run: Run, _ specification: PipelineSpecification, from sourceID: Int64, into target: Target,
                                    connection targetID: Int64, progress: LoadProgress) async throws -> RunOutcome {
        let client = ClickHouseClient(credentials: try await databases.credentials(targetID), http: clickHouse)
        let source = try await databases.connect(sourceID)
        defer { source.close() }

        let bytesBefore = progress.current.bytes
        var load = try clickHouseLoad(run, target, database: client.database, columns: [])
        try await client.execute(load.createLedger)
        if let rows = Int64(try await client.execute(load.ledgerEntry).split(separator: "\n").first ?? "") {
            return try await alreadyLoaded(run, into: load.displayName, rows: rows)
        }
        let cursor = try await client.execute(load.lastCursor).split(separator: "\n").first.map(String.init)
        let read = try await read(run, specification, cursor: cursor, on: source)
        load = try clickHouseLoad(run, target, database: client.database, columns: read.columns)
        let engine = try await client.execute(load.targetEngine).trimmingCharacters(in: .whitespacesAndNewlines)
        let targetExists = !engine.isEmpty
        guard targetExists || target.config.createTable else {
            throw RunFailure("table \(load.displayName) does not exist; set create_table to true to have it created")
        }
        guard !targetExists || ClickHouseLoad.plainEngines.contains(engine) || ClickHouseLoad.mergingEngines.contains(engine) else {
            throw RunFailure("table \(load.displayName) is a \(engine) table; this engine loads MergeTree-family (not replicated) and Log-family tables")
        }
        for statement in load.createStage(targetExists: targetExists) { try await client.execute(statement) }

        let extraction = ContinuousClock.now
        let rows: Int64
        do {
            rows = try await copy(from: source, "COPY (\(load.sourceQuery(try read.copyQuery(nil)))) TO STDOUT", into: client, load.insert,
                                  progress: progress)
        } catch {
            source.cancelCurrentQuery()
            throw error
        }
        // The largest cursor value of exactly these rows: the source's snapshot is still open.
        let cursorValue: String? = if let column = read.plan.cursorColumn, read.columns.contains(where: { $0.name == column }) {
            try await source.query(PostgresQuery(unsafeSQL: "SELECT max(\(SQLIdentifier.quote(column)))::text AS value FROM (\(try read.copyQuery(nil))) AS result"))
                .first?.decode("value", as: String?.self)
        } else {
            nil
        }
        try await source.query("COMMIT")
        // An engine that merges rows may already have folded some of them together: only plain engines are counted.
        if !targetExists || ClickHouseLoad.plainEngines.contains(engine) {
            let staged = Int64(try await client.execute("SELECT count() FROM \(load.stage) FORMAT TSV").trimmingCharacters(in: .whitespacesAndNewlines))
            guard staged == rows else {
                throw RunFailure("ClickHouse holds \(staged.map(String.init) ?? "an unknown number of") rows of the \(rows) sent; nothing was applied")
            }
        }
        // The last moment a cancel leaves the target as it was.
        try Task.checkCancellation()
        let loading = ContinuousClock.now
        for statement in load.apply(targetExists: targetExists) { try await client.execute(statement) }
        try await client.execute(load.record(rows: rows, cursor: cursorValue))
        return RunOutcome(status: .success, rowsProcessed: rows, bytesProcessed: progress.current.bytes - bytesBefore, metrics: RunMetrics(
            extractionMS: RunExecutor.milliseconds(extraction.duration(to: loading)), loadingMS: RunExecutor.milliseconds(loading.duration(to: .now))))
    }

    private func clickHouseLoad(_ run: Run, _ target: Target, database: String, columns: [PostgresLoad.Column]) throws -> ClickHouseLoad {
        do {
            return try ClickHouseLoad(table: target.config.table, database: database, columns: columns, mode: target.config.mode,
                                      key: target.config.key, runID: run.publicID, pipelineID: PublicID.pipeline.format(run.pipelineID ?? 0),
                                      targetID: target.id)
        } catch let error as SQLFragmentError {
            throw RunFailure(.validationError, "table \(target.config.table): \(error.reason)")
        }
    }

    /// Streams `COPY ... TO STDOUT` into ClickHouse in blocks; the next block is read while one is sent, so at most
    /// three blocks are in memory. Returns the rows sent.
    private func copy(from source: PostgresConnection, _ sql: String, into client: ClickHouseClient, _ insert: String,
                      progress: LoadProgress) async throws -> Int64 {
        let blocks = AsyncThrowingChannel<(rows: Int, bytes: [UInt8]), any Error>()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    // Each block is allocated once, at its largest (pages it does not fill are never touched).
                    func empty() -> [UInt8] {
                        var block: [UInt8] = []
                        block.reserveCapacity(Self.clickHouseBlockBytes + Self.copyChunkBytes)
                        return block
                    }
                    var block = empty()
                    var rows = 0
                    try await source.copyOut(sql, chunkSize: Self.copyChunkBytes) { chunk in
                        block.append(contentsOf: chunk)
                        rows += CopyText.rowCount(in: chunk)
                        if rows >= Self.clickHouseBlockRows || block.count >= Self.clickHouseBlockBytes {
                            await blocks.send((rows, block))
                            try Task.checkCancellation()
                            (block, rows) = (empty(), 0)
                        }
                    }
                    if !block.isEmpty { await blocks.send((rows, block)) }
                    blocks.finish()
                } catch {
                    blocks.fail(error)
                    throw error
                }
            }
            do {
                var sent: Int64 = 0
                for try await block in blocks {
                    try await client.insert(insert, rows: block.bytes)
                    sent += Int64(block.rows)
                    progress.add(rows: Int64(block.rows), bytes: Int64(block.bytes.count))
                }
                try await group.waitForAll()
                return sent
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    /// Drops the staging tables in the target's schema that runs which have ended left behind (their runner died
    /// and the run was not tried again, or it ended on another runner before the drop).
    private func sweepStages(beside table: SQLTableName, on destination: PostgresConnection) async throws {
        let stages = try await destination.query(PostgresQuery(unsafeSQL: """
            SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '\\_platform\\_stage\\_run\\_%'
            """, binds: [table.schema.name])).map { try $0.decode("name", as: String.self) }
        for name in stages {
            guard let id = PublicID.run.parse(String(name.dropFirst("_platform_stage_".count))),
                  try await runs.find(id: id)?.status.isFinished ?? true else { continue }
            let stage = SQLTableName(schema: table.schema, table: try SQLIdentifier(name))
            try await destination.query(PostgresQuery(unsafeSQL: "DROP TABLE IF EXISTS \(stage.quoted)"))
            logger.notice("dropped the staging table of an ended run", metadata: ["table": "\(stage.displayName)"])
        }
    }

    /// Rows whose cursor is NULL can never be placed after the last cursor value: an incremental run says how many
    /// it left behind instead of dropping them silently.
    private func reportNullCursors(of specification: PipelineSpecification, plan: ExecutionPlan, on source: PostgresConnection,
                                   run: Run) async throws {
        guard let cursor = plan.cursorColumn, let table = specification.sources.first?.config.table else { return }
        let count = try await source.query(PostgresQuery(unsafeSQL: """
            SELECT count(*) AS value FROM \(try SQLTableName(parsing: table).quoted) WHERE \(SQLIdentifier.quote(cursor)) IS NULL
            """)).first?.decode("value", as: Int64.self) ?? 0
        guard count > 0 else { return }
        try await runs.note(id: run.id, compiledSQL: nil, log: """
            \(count) source row\(count == 1 ? " has" : "s have") no \(cursor) (NULL): an incremental run cannot place \(count == 1 ? "it" : "them") \
            after the last value loaded, so \(count == 1 ? "it was" : "they were") not loaded
            """, level: .warning)
    }

    /// The source's own columns: a table's, or a query's by describing it (parameters as NULL: only the shape is read).
    private func columns(of specification: PipelineSpecification, on source: PostgresConnection) async throws -> [String] {
        let bare = try PlanCompiler.compile(PipelineSpecification(
            name: specification.name, description: "", schedule: nil, sources: specification.sources.map {
                var source = $0
                source.incremental = nil
                return source
            }, transformations: [], targets: specification.targets), sourceColumns: nil, afterCursor: false)
        return try await source.query(PostgresQuery(
            unsafeSQL: "SELECT * FROM (\(bare.query.sql)) AS shape LIMIT 0", binds: bare.query.bindings.map { _ in Optional<String>.none })).columns
    }

    /// A pipeline whose run failed is `failed` until a run succeeds; a cancelled run says nothing of the pipeline.
    func ended(_ run: Run) async {
        guard let pipelineID = run.pipelineID, run.status != .cancelled else { return }
        do {
            try await pipelines.recordRun(pipelineID: pipelineID, succeeded: run.status == .success)
        } catch {
            logger.warning("could not record a run's end on its pipeline", metadata: ["run_id": "\(run.publicID)", "error": "\(error)"])
        }
    }

    /// Drops what a failed or cancelled run left on its targets, on connections of its own: the run's task may be
    /// cancelled, and its connections are then in no state to run anything.
    func cleanUp(after run: Run) async {
        guard let pipelineID = run.pipelineID, let number = run.pipelineVersion,
              let version = try? await pipelines.version(id: pipelineID, number: number) else { return }
        for target in version.specification.targets {
            guard let connectionID = target.connectionID else { continue }
            switch target.type {
            case .postgresql:
                guard let table = try? SQLTableName(parsing: target.config.table),
                      let connection = try? await databases.connect(connectionID) else { continue }
                let stage = PostgresLoad(target: table, columns: [], mode: .append, key: [], createTable: false, runID: run.publicID,
                                         pipelineID: "", targetID: target.id).stage
                _ = try? await connection.query(PostgresQuery(unsafeSQL: "DROP TABLE IF EXISTS \(stage.quoted)"))
                connection.close()
            case .clickhouse:
                guard let credentials = try? await databases.credentials(connectionID),
                      let load = try? clickHouseLoad(run, target, database: credentials.database, columns: []) else { continue }
                let client = ClickHouseClient(credentials: credentials, http: clickHouse)
                // A rename of both names that stopped half-way leaves the previous table without the target's name.
                if (try? await client.execute("EXISTS TABLE \(load.target) FORMAT TSV"))?.hasPrefix("0") == true,
                   (try? await client.execute("EXISTS TABLE \(load.previous) FORMAT TSV"))?.hasPrefix("1") == true {
                    _ = try? await client.execute("RENAME TABLE \(load.previous) TO \(load.target)")
                }
                _ = try? await client.execute("DROP TABLE IF EXISTS \(load.stage)")
            case .file:
                continue
            }
        }
    }

    /// The plan, or the reason it cannot be made, for the run's error.
    private static func compile(_ specification: PipelineSpecification, sourceColumns: [String], afterCursor: Bool, range: BlockRange? = nil,
                                placeholder: @escaping (Int) -> String = { "$\($0)" }) throws -> ExecutionPlan {
        do {
            return try PlanCompiler.compile(specification, sourceColumns: sourceColumns, afterCursor: afterCursor, range: range,
                                            placeholder: placeholder)
        } catch let refusal as PlanCompiler.Refusal {
            throw RunFailure("\(refusal.path): \(refusal.reason)")
        }
    }

    /// The value of each placeholder: a run parameter (as text; PostgreSQL gives it the type its use needs) or the cursor.
    private func bindingValues(_ bindings: [CompiledQuery.Binding], parameters: [String: JSONValue], cursor: String?) throws -> [String?] {
        try bindings.map { binding in
            switch binding {
            case .cursor: return cursor
            case .parameter(let name):
                switch parameters[name] {
                case .string(let text)?: return text
                case .number(let number)?: return number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
                case .bool(let flag)?: return flag ? "true" : "false"
                case .null?: return nil
                default: throw RunFailure(.validationError, "the run has no value for the parameter :\(name)")
                }
            }
        }
    }

    /// The result's columns and their types, from describing the query with its parameters bound.
    private func resultColumns(of sql: String, values: [String?], on source: PostgresConnection) async throws -> [PostgresLoad.Column] {
        let shape = try await source.query(PostgresQuery(unsafeSQL: "SELECT * FROM (\(sql)) AS shape LIMIT 0", binds: values))
        return zip(shape.columns, try await source.typeNames(of: shape)).map { PostgresLoad.Column(name: $0, type: $1) }
    }

    /// The types PostgreSQL infers for the query's placeholders (`PREPARE`, then `pg_prepared_statements`).
    private func placeholderTypes(of query: CompiledQuery, on source: PostgresConnection) async throws -> [String] {
        guard !query.bindings.isEmpty else { return [] }
        try await source.query(PostgresQuery(unsafeSQL: "PREPARE platform_run_plan AS \(query.sql)"))
        let types = try await source.query("SELECT parameter_types::text[] AS types FROM pg_prepared_statements WHERE name = 'platform_run_plan'")
            .first!.decode("types", as: [String].self)
        try await source.query("DEALLOCATE platform_run_plan")
        return types
    }

    /// Puts each placeholder's value into a transaction-local setting (`platform_run.p1` ...), bound, never spliced.
    private func bind(_ values: [String?], on source: PostgresConnection) async throws {
        for (index, value) in values.enumerated() {
            try await source.query(PostgresQuery(unsafeSQL: "SELECT set_config($1, $2, true)", binds: ["platform_run.p\(index + 1)", value ?? ""]))
        }
    }

    /// The largest cursor value loaded, to start the next incremental run after.
    private func nextCursor(_ plan: ExecutionPlan, stage: SQLTableName, on destination: PostgresConnection) async throws -> String? {
        guard let cursor = plan.cursorColumn, plan.columns?.contains(cursor) ?? true else { return nil }
        return try await destination.query(PostgresQuery(unsafeSQL: "SELECT max(\(SQLIdentifier.quote(cursor)))::text AS value FROM \(stage.quoted)"))
            .first?.decode("value", as: String?.self)
    }
}
