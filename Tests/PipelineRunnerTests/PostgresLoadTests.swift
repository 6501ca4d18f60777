@testable import PipelineRunner
import Testing

@Suite struct PostgresLoadTests {
    func load(_ mode: Target.Mode, key: [String] = ["id"]) throws -> PostgresLoad {
        PostgresLoad(target: try SQLTableName(parsing: "analytics.daily"),
                     columns: [.init(name: "id", type: "bigint"), .init(name: "we\"ird", type: "numeric(12,2)")],
                     mode: mode, key: key, createTable: true, runID: "run_7", pipelineID: "pipeline_3", targetID: "dst")
    }

    @Test func theStageSitsBesideTheTargetAndIsFreshForEveryAttempt() throws {
        let load = try load(.append)
        #expect(load.stage.quoted == #""analytics"."_platform_stage_run_7""#)
        #expect(load.ledger.quoted == #""analytics"."_platform_loads""#)
        #expect(load.createStage(.insert) == [#"DROP TABLE IF EXISTS "analytics"."_platform_stage_run_7""#,
                                              #"CREATE UNLOGGED TABLE "analytics"."_platform_stage_run_7" ("id" bigint, "we""ird" numeric(12,2))"#])
        // A stage that becomes the target is logged; one that replaces it is built like it.
        #expect(load.createStage(.rename).last == #"CREATE TABLE "analytics"."_platform_stage_run_7" ("id" bigint, "we""ird" numeric(12,2))"#)
        #expect(load.createStage(.swap).last?.hasPrefix(#"CREATE TABLE "analytics"."_platform_stage_run_7" (LIKE "analytics"."daily" INCLUDING CONSTRAINTS INCLUDING INDEXES"#) == true)
        #expect(load.copyIn == #"COPY "analytics"."_platform_stage_run_7" ("id", "we""ird") FROM STDIN"#)
    }

    @Test(arguments: [
        (Target.Mode.append, false, [
            #"CREATE TABLE "analytics"."daily" (LIKE "analytics"."_platform_stage_run_7")"#,
            #"INSERT INTO "analytics"."daily" ("id", "we""ird") SELECT "id", "we""ird" FROM "analytics"."_platform_stage_run_7""#,
        ]),
        (.replace, true, [
            #"DELETE FROM "analytics"."daily""#,
            #"INSERT INTO "analytics"."daily" ("id", "we""ird") SELECT "id", "we""ird" FROM "analytics"."_platform_stage_run_7""#,
        ]),
        (.upsert, false, [
            #"CREATE TABLE "analytics"."daily" (LIKE "analytics"."_platform_stage_run_7")"#,
            #"CREATE UNIQUE INDEX ON "analytics"."daily" ("id")"#,
            #"INSERT INTO "analytics"."daily" ("id", "we""ird") SELECT DISTINCT ON ("id") "id", "we""ird" FROM "analytics"."_platform_stage_run_7" ORDER BY "id" ON CONFLICT ("id") DO UPDATE SET "we""ird" = EXCLUDED."we""ird""#,
        ]),
    ] as [(Target.Mode, Bool, [String])])
    func eachModeAppliesTheStageInOneTransaction(mode: Target.Mode, exists: Bool, statements: [String]) throws {
        #expect(try load(mode).apply(targetExists: exists) == statements + [#"DROP TABLE "analytics"."_platform_stage_run_7""#])
    }

    @Test func theStrategyFollowsTheModeAndTheTarget() throws {
        #expect(try load(.append).strategy(targetExists: false, swappable: false) == .rename)
        #expect(try load(.replace).strategy(targetExists: false, swappable: false) == .rename)
        // An upsert's new table needs its rows made unique by key: inserted, not renamed.
        #expect(try load(.upsert).strategy(targetExists: false, swappable: false) == .insert)
        #expect(try load(.replace).strategy(targetExists: true, swappable: true) == .swap)
        #expect(try load(.replace).strategy(targetExists: true, swappable: false) == .insert)
        #expect(try load(.append).strategy(targetExists: true, swappable: true) == .insert)
        #expect(try load(.append).renameStage == #"ALTER TABLE "analytics"."_platform_stage_run_7" RENAME TO "daily""#)
    }

    @Test func aSwapMovesTheTargetAsideGrantsDropsAndRenamesIndexes() throws {
        #expect(try load(.replace).swap(grants: [#"GRANT SELECT ON "analytics"."daily" TO "reader""#], indexNames: [
            (fresh: "_platform_stage_run_7_pkey", kept: "daily_pkey"), (fresh: "same", kept: "same"),
        ]) == [
            #"ALTER TABLE "analytics"."daily" RENAME TO "_platform_old_run_7""#,
            #"ALTER TABLE "analytics"."_platform_stage_run_7" RENAME TO "daily""#,
            #"GRANT SELECT ON "analytics"."daily" TO "reader""#,
            #"DROP TABLE "analytics"."_platform_old_run_7""#,
            #"ALTER INDEX "analytics"."_platform_stage_run_7_pkey" RENAME TO "daily_pkey""#,
        ])
    }

    @Test func anUpsertOfKeysOnlyChangesNothing() throws {
        let statements = try PostgresLoad(target: try SQLTableName(parsing: "t"), columns: [.init(name: "id", type: "bigint")], mode: .upsert,
                                          key: ["id"], createTable: false, runID: "run_1", pipelineID: "p", targetID: "d").apply(targetExists: true)
        #expect(statements[0].hasSuffix(#"ON CONFLICT ("id") DO NOTHING"#))
    }
}
