import Foundation
@testable import PipelineRunner
import Testing

/// A specification of one table source and the given steps.
func specification(table: String = "public.orders", query: String? = nil, cursor: String? = nil,
                   _ steps: [Transformation]) -> PipelineSpecification {
    PipelineSpecification(
        name: "p", description: "", schedule: nil,
        sources: [Source(id: "src", type: .postgresql, connectionID: 1,
                         config: query.map { .init(query: $0) } ?? .init(table: table), incremental: cursor.map { .init(cursorColumn: $0) })],
        transformations: steps.map { TransformationStep($0) },
        targets: [Target(id: "dst", type: .postgresql, connectionID: 2, config: .init(table: "t", mode: .append, key: [], createTable: true))])
}

@Suite struct PlanCompilerTests {
    let columns = ["id", "amount", "status", "created_at"]

    func compile(_ steps: [Transformation], cursor: String? = nil, afterCursor: Bool = false, query: String? = nil,
                 columns: [String]? = nil) throws -> ExecutionPlan {
        try PlanCompiler.compile(specification(query: query, cursor: cursor, steps), sourceColumns: columns ?? self.columns, afterCursor: afterCursor)
    }

    @Test func aTableWithoutStepsIsReadWhole() throws {
        let plan = try compile([])
        #expect(plan.query.sql == #"SELECT * FROM "public"."orders""#)
        #expect(plan.query.bindings.isEmpty && plan.columns == columns)
    }

    /// Each transformation, and the SQL it becomes around the rows before it.
    @Test(arguments: [
        (Transformation.filter(condition: "amount > 0"),
         #"SELECT * FROM (SELECT * FROM "public"."orders") AS s0 WHERE (amount > 0)"#, ["id", "amount", "status", "created_at"]),
        (.select(columns: ["id", "amount"], rename: ["amount": "value"]),
         #"SELECT "id", "amount" AS "value" FROM (SELECT * FROM "public"."orders") AS s0"#, ["id", "value"]),
        (.derive(column: "day", expression: "date_trunc('day', created_at)"),
         #"SELECT s0.*, (date_trunc('day', created_at)) AS "day" FROM (SELECT * FROM "public"."orders") AS s0"#,
         ["id", "amount", "status", "created_at", "day"]),
        (.derive(column: "amount", expression: "amount * 2"),
         #"SELECT "id", (amount * 2) AS "amount", "status", "created_at" FROM (SELECT * FROM "public"."orders") AS s0"#,
         ["id", "amount", "status", "created_at"]),
        (.cast(columns: ["amount": "numeric(12,2)"]),
         #"SELECT "id", CAST("amount" AS numeric(12,2)) AS "amount", "status", "created_at" FROM (SELECT * FROM "public"."orders") AS s0"#,
         ["id", "amount", "status", "created_at"]),
        (.aggregate(groupBy: ["status"], aggregations: ["total": "sum(amount)", "n": "count(*)"]),
         #"SELECT "status", (count(*)) AS "n", (sum(amount)) AS "total" FROM (SELECT * FROM "public"."orders") AS s0 GROUP BY "status""#,
         ["status", "n", "total"]),
        (.aggregate(groupBy: [], aggregations: ["n": "count(*)"]),
         #"SELECT (count(*)) AS "n" FROM (SELECT * FROM "public"."orders") AS s0"#, ["n"]),
        (.deduplicate(key: ["id"]),
         #"SELECT DISTINCT ON ("id") * FROM (SELECT * FROM "public"."orders") AS s0 ORDER BY "id""#, ["id", "amount", "status", "created_at"]),
    ] as [(Transformation, String, [String])])
    func eachStep(step: Transformation, sql: String, columns: [String]) throws {
        let plan = try compile([step])
        #expect(plan.query.sql == sql)
        #expect(plan.columns == columns)
    }

    @Test func aSQLStepReadsTheRowsSoFarAsInput() throws {
        let plan = try compile([.filter(condition: "amount > 0"), .sql(query: "SELECT status, max(amount) AS top FROM input GROUP BY status")])
        #expect(plan.query.sql == #"SELECT * FROM (WITH input AS (SELECT * FROM (SELECT * FROM "public"."orders") AS s0 WHERE (amount > 0)) SELECT status, max(amount) AS top FROM input GROUP BY status) AS s1"#)
        #expect(plan.columns == nil)
        // Its own WITH queries come after input, so they may read it; RECURSIVE stays where it was.
        #expect(try PlanCompiler.withInput("R", in: "WITH t AS (SELECT * FROM input) SELECT * FROM t") == "WITH input AS (R), t AS (SELECT * FROM input) SELECT * FROM t")
        #expect(try PlanCompiler.withInput("R", in: "with recursive t(n) AS (SELECT 1) SELECT * FROM t, input")
            == "with recursive input AS (R), t(n) AS (SELECT 1) SELECT * FROM t, input")
    }

    @Test func aCastAfterASQLStepIsRefusedAtItsPath() {
        #expect(throws: PlanCompiler.Refusal(path: "transformations[1]",
                                              reason: "casts columns that cannot be known here (after a sql step); cast inside the sql step")) {
            try compile([.sql(query: "SELECT * FROM input"), .cast(columns: ["id": "text"])])
        }
    }

    @Test func runParametersAndTheCursorArePlaceholdersNeverText() throws {
        let plan = try compile([
            .filter(condition: "created_at >= :start_date AND created_at < :end_date AND status <> ':start_date'"),
            .derive(column: "late", expression: "created_at > :end_date::timestamptz"),
        ], cursor: "created_at", afterCursor: true)
        #expect(plan.query.bindings == [.cursor, .parameter("start_date"), .parameter("end_date")])
        #expect(plan.query.sql.contains(#"WHERE "created_at" > $1"#))
        #expect(plan.query.sql.contains("created_at >= $2 AND created_at < $3 AND status <> ':start_date'"))
        #expect(plan.query.sql.contains("(created_at > $3::timestamptz) AS \"late\""))
        #expect(plan.cursorColumn == "created_at")
        // Without a committed cursor value the whole table is read.
        #expect(try compile([], cursor: "created_at").query.bindings.isEmpty)
    }

    @Test func aQuerySourceIsASubqueryAndNamesAreQuoted() throws {
        let plan = try compile([.select(columns: ["we\"ird"], rename: [:])], query: "SELECT id AS \"we\"\"ird\" FROM orders WHERE id > :min",
                               columns: ["we\"ird"])
        #expect(plan.query.sql == #"SELECT "we""ird" FROM (SELECT * FROM (SELECT id AS "we""ird" FROM orders WHERE id > $1) AS source) AS s0"#)
        #expect(plan.query.bindings == [.parameter("min")])
        let mixed = try PlanCompiler.compile(specification(table: "Sales.Orders", []), sourceColumns: nil, afterCursor: false)
        #expect(mixed.query.sql == #"SELECT * FROM "sales"."orders""#)
        #expect(mixed.columns == nil)
    }

    @Test func theStandardPipelineCompilesEndToEnd() throws {
        let steps: [Transformation] = [
            .filter(condition: "amount > 0"), .derive(column: "day", expression: "date_trunc('day', created_at)"),
            .aggregate(groupBy: ["day"], aggregations: ["total_amount": "sum(amount)"]), .cast(columns: ["total_amount": "numeric(14,2)"]),
        ]
        let plan = try compile(steps)
        #expect(plan.columns == ["day", "total_amount"])
        #expect(plan.query.sql.hasPrefix(#"SELECT "day", CAST("total_amount" AS numeric(14,2)) AS "total_amount" FROM (SELECT "day", (sum(amount)) AS "total_amount" FROM "#))
    }
}
