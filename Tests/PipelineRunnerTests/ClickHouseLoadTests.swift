@testable import PipelineRunner
import Testing

@Suite struct ClickHouseLoadTests {
    func load(_ mode: Target.Mode = .replace, table: String = "analytics.daily") throws -> ClickHouseLoad {
        try ClickHouseLoad(table: table, database: "default", columns: [.init(name: "id", type: "bigint"), .init(name: "we`ird", type: "text")],
                           mode: mode, key: ["id"], runID: "run_7", pipelineID: "pipeline_3", targetID: "dst")
    }

    @Test(arguments: [
        ("smallint", "Nullable(Int16)"), ("integer", "Nullable(Int32)"), ("bigint", "Nullable(Int64)"), ("real", "Nullable(Float32)"),
        ("double precision", "Nullable(Float64)"), ("numeric(12,2)", "Nullable(Decimal(12, 2))"), ("numeric(40,2)", "Nullable(String)"),
        ("numeric", "Nullable(String)"), ("boolean", "Nullable(UInt8)"), ("date", "Nullable(Date)"),
        ("timestamp with time zone", "Nullable(DateTime)"), ("timestamp(3) without time zone", "Nullable(DateTime)"),
        ("uuid", "Nullable(UUID)"), ("jsonb", "Nullable(String)"), ("text[]", "Nullable(String)"), ("character varying(20)", "Nullable(String)"),
    ])
    func postgreSQLTypesMapToClickHouseTypes(postgres: String, clickHouse: String) {
        #expect(ClickHouseLoad.column("c", postgresType: postgres, nullable: true).type == clickHouse)
    }

    @Test func keysAreNotNullableAndValuesAreWrittenAsClickHouseReadsThem() {
        #expect(ClickHouseLoad.column("id", postgresType: "bigint", nullable: false) == .init(name: "id", type: "Int64", expression: #""id""#))
        #expect(ClickHouseLoad.column("ok", postgresType: "boolean", nullable: true).expression == #"CAST("ok" AS integer)"#)
        let time = ClickHouseLoad.column("at", postgresType: "timestamp with time zone", nullable: true).expression
        #expect(time.contains(#"floor(extract(epoch FROM "at"))::bigint"#) && time.contains("outside the times ClickHouse holds"))
        // The refusal depends on the row's value, so PostgreSQL cannot fold it into a constant that always fails.
        #expect(ClickHouseLoad.column("d", postgresType: "date", nullable: true).expression.contains(#"|| "d"::text AS date)"#))
    }

    @Test func namesAndLiteralsAreQuotedForClickHouse() throws {
        let load = try load()
        #expect(load.target == "`analytics`.`daily`" && load.stage == "`analytics`.`_platform_stage_run_7`")
        #expect(try self.load(table: "daily").target == "`default`.`daily`")
        #expect(load.insert == "INSERT INTO `analytics`.`_platform_stage_run_7` (`id`, `we\\`ird`) FORMAT TSV")
        #expect(ClickHouseLoad.literal("a'b\\c\nd") == #"'a\'b\\c\nd'"#)
        #expect(throws: SQLFragmentError.self) { try self.load(table: "a.b.c") }
        #expect(throws: SQLFragmentError.self) { try self.load(table: "") }
    }

    @Test func replaceSwapsBothNamesInOneStatementAndAppendInserts() throws {
        #expect(try load().apply(targetExists: true) == [
            "DROP TABLE IF EXISTS `analytics`.`_platform_old_run_7`",
            "RENAME TABLE `analytics`.`daily` TO `analytics`.`_platform_old_run_7`, `analytics`.`_platform_stage_run_7` TO `analytics`.`daily`",
            "DROP TABLE `analytics`.`_platform_old_run_7`",
        ])
        #expect(try load(.append).apply(targetExists: true) == [
            "INSERT INTO `analytics`.`daily` (`id`, `we\\`ird`) SELECT `id`, `we\\`ird` FROM `analytics`.`_platform_stage_run_7`",
            "DROP TABLE `analytics`.`_platform_stage_run_7`",
        ])
        #expect(try load(.append).apply(targetExists: false) == ["RENAME TABLE `analytics`.`_platform_stage_run_7` TO `analytics`.`daily`"])
        #expect(try load().createStage(targetExists: false).last
            == "CREATE TABLE `analytics`.`_platform_stage_run_7` (`id` Int64, `we\\`ird` Nullable(String)) ENGINE = MergeTree() ORDER BY (`id`)")
        #expect(try load().createStage(targetExists: true).last == "CREATE TABLE `analytics`.`_platform_stage_run_7` AS `analytics`.`daily`")
    }
}
