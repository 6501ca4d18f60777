@testable import PipelineRunner
import Testing

@Suite struct RangeSplitterTests {
    @Test func rangesCoverEveryBlockOnceAndTheLastIsOpen() {
        let ranges = RangeSplitter.ranges(blocks: 10_000, parts: 4)
        #expect(ranges == [BlockRange(start: 0, end: 2_500), BlockRange(start: 2_500, end: 5_000), BlockRange(start: 5_000, end: 7_500),
                           BlockRange(start: 7_500, end: nil)])
        // Uneven sizes: ranges meet end to start.
        let uneven = RangeSplitter.ranges(blocks: 10_001, parts: 3)
        #expect(uneven.count == 3 && uneven.first?.start == 0 && uneven.last?.end == nil)
        #expect(zip(uneven, uneven.dropFirst()).allSatisfy { $0.end == $1.start })
    }

    @Test func smallTablesAndSmallAsksAreOneRange() {
        #expect(RangeSplitter.ranges(blocks: 1_500, parts: 8) == [BlockRange(start: 0, end: nil)])
        #expect(RangeSplitter.ranges(blocks: 100_000, parts: 1) == [BlockRange(start: 0, end: nil)])
        #expect(RangeSplitter.ranges(blocks: 0, parts: 4) == [BlockRange(start: 0, end: nil)])
        // No more ranges than 1,024-block pieces, nor than the maximum.
        #expect(RangeSplitter.ranges(blocks: 3_000, parts: 8).count == 2)
        #expect(RangeSplitter.ranges(blocks: 10_000_000, parts: 99).count == RangeSplitter.maximumParts)
    }

    @Test func aRangeIsATidCondition() {
        #expect(BlockRange(start: 5, end: 9).condition == "ctid >= '(5,0)'::tid AND ctid < '(9,0)'::tid")
        #expect(BlockRange(start: 9, end: nil).condition == "ctid >= '(9,0)'::tid")
    }

    @Test func onlyRowByRowPipelinesOverATableSplit() throws {
        func specification(_ steps: [Transformation], query: Bool = false) -> PipelineSpecification {
            PipelineSpecification(
                name: "p", description: "", schedule: nil,
                sources: [Source(id: "s", type: .postgresql, connectionID: 1,
                                 config: query ? .init(query: "SELECT 1 AS a") : .init(table: "public.orders"))],
                transformations: steps.map { TransformationStep($0) },
                targets: [Target(id: "t", type: .postgresql, connectionID: 2, config: .init(table: "t", mode: .append, key: [], createTable: true))])
        }
        #expect(RangeSplitter.canSplit(specification([.filter(condition: "a > 1"), .derive(column: "b", expression: "a * 2"),
                                                      .select(columns: ["a"], rename: [:]), .cast(columns: ["a": "text"])])))
        #expect(!RangeSplitter.canSplit(specification([.aggregate(groupBy: ["a"], aggregations: ["n": "count(*)"])])))
        #expect(!RangeSplitter.canSplit(specification([.deduplicate(key: ["a"])])))
        #expect(!RangeSplitter.canSplit(specification([.sql(query: "SELECT * FROM input")])))
        #expect(!RangeSplitter.canSplit(specification([], query: true)))
        // The range limits the table itself, beneath every step.
        let plan = try PlanCompiler.compile(specification([.filter(condition: "a > 1")]), sourceColumns: ["a"], afterCursor: false,
                                            range: BlockRange(start: 0, end: 64))
        #expect(plan.query.sql.hasPrefix(#"SELECT * FROM (SELECT * FROM "public"."orders" WHERE ctid >= '(0,0)'::tid AND ctid < '(64,0)'::tid) AS s0"#))
    }
}
