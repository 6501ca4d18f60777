import Foundation
@testable import PipelineRunner
import SharedModels
import Testing

@Suite struct InspectionTests {
    func facts(_ change: (inout TableFacts) -> Void = { _ in }) -> TableFacts {
        var facts = TableFacts(schema: "public", name: "orders", totalBytes: 8_192, tableBytes: 8_192, indexBytes: 0, estimatedRows: 50,
                               exactRows: 50, liveTuples: 50, deadTuples: 0, sequentialScans: 3, indexScans: 40,
                               lastAnalyze: Date(timeIntervalSince1970: 1_700_000_000), hasPrimaryKey: true)
        change(&facts)
        return facts
    }

    func codes(_ facts: TableFacts) -> [Recommendation.Code] { TableAdvice.recommendations(for: facts).map(\.code) }

    @Test func aHealthyTableGetsNoAdvice() {
        #expect(codes(facts()) == [])
    }

    @Test func eachRuleFiresAtItsThresholdAndNotBelow() {
        #expect(codes(facts { $0.hasPrimaryKey = false }) == [.noPrimaryKey])
        // Dead tuples: more than 1,000 and more than a fifth of the live ones.
        #expect(codes(facts { $0.deadTuples = 1_001; $0.liveTuples = 5_000 }) == [.vacuum])
        #expect(codes(facts { $0.deadTuples = 1_000; $0.liveTuples = 10 }) == [])
        #expect(codes(facts { $0.deadTuples = 1_500; $0.liveTuples = 10_000 }) == [])
        // Never analysed matters only for a table with rows.
        #expect(codes(facts { $0.lastAnalyze = nil }) == [.analyze])
        #expect(codes(facts { $0.lastAnalyze = nil; $0.lastAutoanalyze = Date() }) == [])
        #expect(codes(facts { $0.lastAnalyze = nil; $0.exactRows = 0; $0.estimatedRows = 0 }) == [])
        // Sequential scans: a big table, at least 100 of them, ten times the index scans.
        #expect(codes(facts { $0.exactRows = 20_000; $0.sequentialScans = 500; $0.indexScans = 10 }) == [.sequentialScans])
        #expect(codes(facts { $0.exactRows = 20_000; $0.sequentialScans = 500; $0.indexScans = 60 }) == [])
        #expect(codes(facts { $0.exactRows = 9_999; $0.sequentialScans = 500; $0.indexScans = 0 }) == [])
        #expect(codes(facts { $0.exactRows = 20_000; $0.sequentialScans = 99; $0.indexScans = 0 }) == [])
        // One recommendation per unused index and per unindexed foreign key.
        let indexes = facts {
            $0.unusedIndexes = [.init(name: "orders_note_idx", bytes: 16_384), .init(name: "orders_day_idx", bytes: 8_192)]
            $0.unindexedForeignKeys = [.init(name: "orders_customer_fk", columns: ["customer_id", "region"])]
        }
        #expect(codes(indexes) == [.unusedIndex, .unusedIndex, .unindexedForeignKey])
        #expect(TableAdvice.recommendations(for: indexes).last?.message.contains("orders_customer_fk (customer_id, region)") == true)
    }

    @Test func anExactCountWinsOverTheEstimate() {
        #expect(facts { $0.exactRows = nil; $0.estimatedRows = 7 }.rows == 7)
        #expect(facts { $0.exactRows = 3; $0.estimatedRows = 7 }.rows == 3)
    }

    @Test func tablesToAnalyseAreTableNamesFoldedAsPostgreSQLFoldsThem() throws {
        #expect(try TableAnalysis.tables(in: [:]).isEmpty)
        #expect(try TableAnalysis.tables(in: ["tables": .null]).isEmpty)
        #expect(try TableAnalysis.tables(in: ["tables": ["Orders", "sales.\"Big Table\""]]).map(\.displayName)
            == ["public.orders", "sales.Big Table"])
        for bad: JSONValue in ["orders", [1], ["a.b.c"], ["x; DROP TABLE y"]] {
            #expect(throws: RunFailure.self) { try TableAnalysis.tables(in: ["tables": bad]) }
        }
    }

    @Test(arguments: [
        ("SELECT 1", true), ("  with x AS (SELECT 1) SELECT * FROM x", true), ("(SELECT 1) UNION (SELECT 2)", true),
        ("VALUES (1)", true), ("TABLE orders", true), ("-- the daily check\nSELECT 1", true), ("/* note */ select 1", true),
        ("INSERT INTO t VALUES (1)", false), ("UPDATE t SET a = 1", false), ("EXPLAIN SELECT 1", false), ("SHOW work_mem", false),
        ("selection", false),
    ])
    func onlyQueriesGoThroughACursor(sql: String, returnsRows: Bool) {
        #expect(CustomSQL.returnsRows(sql) == returnsRows)
    }

    @Test func valuesKeepTheirJSONTypeWhereNothingIsLost() {
        #expect(JSONValue(postgresText: nil, type: 23) == .null)
        #expect(JSONValue(postgresText: "t", type: 16) == .bool(true))
        #expect(JSONValue(postgresText: "42", type: 20) == .number(42))
        // Beyond 2^53 a JSON number would round: kept as text, as numeric always is.
        #expect(JSONValue(postgresText: "9007199254740993", type: 20) == .string("9007199254740993"))
        // The one value whose magnitude a signed integer cannot hold.
        #expect(JSONValue(postgresText: "-9223372036854775808", type: 20) == .string("-9223372036854775808"))
        #expect(JSONValue(postgresText: "0.1", type: 1700) == .string("0.1"))
        #expect(JSONValue(postgresText: "2.5", type: 701) == .number(2.5))
        #expect(JSONValue(postgresText: "NaN", type: 701) == .string("NaN"))
        #expect(JSONValue(postgresText: #"{"a": [1, true]}"#, type: 3802) == .object(["a": [1, true]]))
        #expect(JSONValue(postgresText: "2024-01-01 00:00:00+00", type: 1184) == .string("2024-01-01 00:00:00+00"))
    }

    @Test(arguments: [
        ("ALTER ROLE app PASSWORD 'hunter2'", "ALTER ROLE app PASSWORD '?'"),
        ("SELECT 'it''s', E'a\\'b', 1", "SELECT '?', E'?', 1"),
        ("SELECT $$secret$$, $tag$x $$ y$tag$, $1", "SELECT $$?$$, $tag$?$tag$, $1"),
        ("SELECT a$b$ FROM t", "SELECT a$b$ FROM t"),
        ("SELECT 'unterminated", "SELECT '?'"),
    ])
    func statementTextsKeepNoLiterals(text: String, redacted: String) {
        #expect(StatementText.redacted(text) == redacted)
    }

    @Test func longStatementTextsAreCut() {
        #expect(StatementText.redacted(String(repeating: "x", count: 50), limit: 10) == "xxxxxxxxxx…")
    }
}

@Suite struct StatementTextTests {
    @Test(arguments: [
        (#"ALTER ROLE "o'neil" PASSWORD 'hunter2'"#, #"ALTER ROLE "o'neil" PASSWORD '?'"#),
        (#"SELECT date'2024-01-01', 'C:\', 'x'"#, #"SELECT date'?', '?', '?'"#),
        ("SELECT 1 -- the password is 'x\nFROM t WHERE a = 'secret'", "SELECT 1 --?\nFROM t WHERE a = '?'"),
        ("/* it's /* nested */ here */ SELECT 'b'", "/*?*/ SELECT '?'"),
        ("SELECT $1, $q1$ secret $q1$", "SELECT $1, $q1$?$q1$"),
    ])
    func commentsAndQuotedNamesDoNotConfuseTheRedaction(text: String, redacted: String) {
        #expect(StatementText.redacted(text) == redacted)
    }
}
