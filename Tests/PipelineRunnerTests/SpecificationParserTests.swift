import Foundation
@testable import PipelineRunner
import SharedModels
import Testing

/// A valid pipeline body, changed per test.
func pipelineBody(_ change: (inout [String: JSONValue]) -> Void = { _ in }) -> [String: JSONValue] {
    var body: [String: JSONValue] = [
        "project_id": "project_1",
        "name": "Daily sales",
        "description": "Sales by day",
        "schedule": "0 2 * * *",
        "sources": [["id": "src", "type": "postgresql", "connection_id": 1, "config": ["table": "public.transactions"],
                     "incremental": ["cursor_column": "updated_at"]]],
        "transformations": [
            ["type": "filter", "condition": "amount > 0"],
            ["type": "derive", "column": "day", "expression": "date_trunc('day', created_at)"],
            ["type": "aggregate", "group_by": ["day"], "aggregations": ["total_amount": "sum(amount)"]],
        ],
        "targets": [["id": "dst", "type": "postgresql", "connection_id": 2,
                     "config": ["table": "analytics.daily_sales", "mode": "upsert", "key": ["day"], "create_table": true]]],
    ]
    change(&body)
    return body
}

/// The problems of a body the parser refuses.
func problems(of body: [String: JSONValue]) -> [SpecificationProblem] {
    do {
        _ = try SpecificationParser.parse(body)
        return []
    } catch {
        return error.problems
    }
}

/// Sets `value` at a path of nested objects and arrays (`["sources", 0, "config", "table"]`).
func setting(_ value: JSONValue?, at path: [any Sendable], in json: JSONValue) -> JSONValue {
    guard let first = path.first else { return value ?? .null }
    let rest = Array(path.dropFirst())
    switch (json, first) {
    case (.object(var object), let key as String):
        if rest.isEmpty && value == nil { object[key] = nil } else { object[key] = setting(value, at: rest, in: object[key] ?? .object([:])) }
        return .object(object)
    case (.array(var array), let index as Int):
        array[index] = setting(value, at: rest, in: array[index])
        return .array(array)
    default:
        return json
    }
}

@Suite struct SpecificationParserTests {
    @Test func aValidPipelineParsesWhole() throws {
        let parsed = try SpecificationParser.parse(pipelineBody())
        let specification = parsed.specification
        #expect(specification.name == "Daily sales")
        #expect(specification.sources[0].connectionID == 1)
        #expect(specification.sources[0].incremental?.cursorColumn == "updated_at")
        #expect(specification.transformations.map(\.transformation.kind) == [.filter, .derive, .aggregate])
        #expect(specification.targets[0].config == Target.Config(table: "analytics.daily_sales", mode: .upsert, key: ["day"], createTable: true))
        #expect(parsed.inlineEndpoints.isEmpty)
        #expect(specification.connections.map(\.id) == [1, 2])
    }

    @Test func parallelismIsOneToSixteenConnections() throws {
        func body(_ value: JSONValue) -> [String: JSONValue] {
            pipelineBody { $0["targets"] = setting(value, at: [0, "config", "parallelism"], in: $0["targets"]!) }
        }
        #expect(try SpecificationParser.parse(body(4)).specification.targets[0].config.parallelism == 4)
        #expect(try SpecificationParser.parse(body(.null)).specification.targets[0].config.parallelism == nil)
        for bad: JSONValue in [0, 17, "4", 2.5] {
            #expect(problems(of: body(bad)).map(\.path) == ["targets[0].config.parallelism"], "\(bad)")
        }
    }

    @Test func aStoredSpecificationRoundTripsThroughJSON() throws {
        let specification = try SpecificationParser.parse(pipelineBody()).specification
        let json = try PipelineService.json(of: specification)
        #expect(try SpecificationParser.parse(json).specification == specification)
        let decoded = try JSONDecoder().decode(PipelineSpecification.self, from: JSONEncoder().encode(specification))
        #expect(decoded == specification)
    }

    /// Each rejection names the JSON path of the field and why.
    @Test(arguments: [
        (["name"], nil, "name", "is required"),
        (["name"], "   ", "name", "must not be empty"),
        (["name"], "tab\there", "name", "control characters"),
        (["name"], 12, "name", "must be a string"),
        (["schedule"], "every day", "schedule", "expected 5 fields"),
        (["schedule"], "61 * * * *", "schedule", "minute: 61 is out of range"),
        (["sources"], [], "sources", "at least 1 item"),
        (["sources"], "x", "sources", "JSON array"),
        (["sources", 0, "type"], "mysql", "sources[0].type", "must be one of postgresql, file"),
        (["sources", 0, "type"], "file", "sources[0].type", "file-storage"),
        (["sources", 0, "connection_id"], -3, "sources[0].connection_id", "positive integer"),
        (["sources", 0, "connection_id"], nil, "sources[0].connection_id", "is required"),
        (["sources", 0, "config", "table"], "a.b.c", "sources[0].config.table", "more than two parts"),
        (["sources", 0, "config", "table"], nil, "sources[0].config", "needs table or query"),
        (["sources", 0, "config", "query"], "SELECT 1", "sources[0].config", "not both"),
        (["sources", 0, "config", "password"], "secret", "sources[0].config.password", "not a known field"),
        (["sources", 0, "incremental", "cursor_column"], "", "sources[0].incremental.cursor_column", "must not be empty"),
        (["sources", 0, "id"], "has space", "sources[0].id", "letters, digits"),
        (["targets", 0, "id"], "src", "targets[0].id", "used by another"),
        (["transformations", 0, "condition"], "amount > 0; DROP TABLE x", "transformations[0].condition", "statement separator"),
        (["transformations", 0, "condition"], "amount > 0 -- why", "transformations[0].condition", "comment"),
        (["transformations", 1, "expression"], "pg_sleep(10)", "transformations[1].expression", "pg_sleep"),
        (["transformations", 1, "column"], "", "transformations[1].column", "must not be empty"),
        (["transformations", 2, "aggregations", "total_amount"], "sum(amount); COMMIT", "transformations[2].aggregations.total_amount", "separator"),
        (["transformations", 2, "aggregations", "day"], "count(*)", "transformations[2].aggregations.day", "group_by"),
        (["transformations", 2, "group_by"], "day", "transformations[2].group_by", "JSON array"),
        (["transformations", 0, "type"], "python", "transformations[0].type", "python transformations are not supported"),
        (["transformations", 0, "type"], "pivot", "transformations[0].type", "supported types: filter, select"),
        (["transformations", 0, "extra"], 1, "transformations[0].extra", "not a known field"),
        (["targets"], [], "targets", "at least 1 item"),
        (["targets", 0, "type"], "file", "targets[0].type", "file-storage"),
        (["targets", 0, "config", "mode"], "merge", "targets[0].config.mode", "append, replace, upsert"),
        (["targets", 0, "config", "key"], [], "targets[0].config.key", "required for mode upsert"),
        (["targets", 0, "config", "key"], ["day", "day"], "targets[0].config.key[1]", "listed twice"),
        (["targets", 0, "config", "create_table"], "yes", "targets[0].config.create_table", "true or false"),
        (["targets", 0, "config", "table"], nil, "targets[0].config.table", "is required"),
        (["owner"], "me", "owner", "not a known field"),
    ] as [([any Sendable], JSONValue?, String, String)])
    func rejections(path: [any Sendable], value: JSONValue?, field: String, reason: String) throws {
        let body = setting(value, at: path, in: .object(pipelineBody()))
        guard case .object(let object) = body else { Issue.record("not an object"); return }
        let found = problems(of: object)
        let problem = try #require(found.first { $0.path == field }, "no problem at \(field); got \(found)")
        #expect(problem.reason.contains(reason), "\(problem.reason)")
    }

    @Test func aPythonTransformationIsUnsupportedWithItsOwnCode() throws {
        let body = pipelineBody { $0["transformations"] = [["id": "t1", "type": "python", "code": "def transform(df): return df"]] }
        let error = try #require(throws: SpecificationProblems.self) { try SpecificationParser.parse(body) }
        #expect(error.apiError.code == .unsupportedTransformation)
        #expect(error.apiError.status == .unprocessableContent)
        #expect(error.problems.map(\.path) == ["transformations[0].type"])
    }

    @Test func everyProblemIsReportedAtOnce() {
        let body = pipelineBody {
            $0["name"] = nil
            $0["transformations"] = [["type": "filter", "condition": "1; 2"], ["type": "cast", "columns": ["amount": "int; drop"]]]
        }
        #expect(problems(of: body).map(\.path) == ["name", "transformations[0].condition", "transformations[1].columns.amount"])
    }

    @Test func inlineEndpointsAreCollectedForResolution() throws {
        let body = pipelineBody {
            $0["sources"] = [["id": "source_1", "type": "postgresql",
                              "config": ["host": "postgres.example.com", "port": 5433, "database": "sales_db", "table": "transactions"]]]
        }
        let parsed = try SpecificationParser.parse(body)
        #expect(parsed.inlineEndpoints == [InlineEndpoint(side: .source(0), host: "postgres.example.com", port: 5433, database: "sales_db")])
        var resolved = parsed
        resolved.resolve(parsed.inlineEndpoints[0], to: 9)
        #expect(resolved.specification.sources[0].connectionID == 9)
        // Both ways at once is ambiguous.
        let both = setting(1, at: ["sources", 0, "connection_id"], in: .object(body))
        guard case .object(let object) = both else { return }
        #expect(problems(of: object).map(\.path) == ["sources[0].config"])
    }

    @Test func selectRenamesOnlySelectedColumns() {
        let body = pipelineBody {
            $0["transformations"] = [["type": "select", "columns": ["id", "amount"], "rename": ["total": "value"]]]
        }
        #expect(problems(of: body).map(\.path) == ["transformations[0].rename.total"])
        let collision = pipelineBody { $0["transformations"] = [["type": "select", "columns": ["id", "amount"], "rename": ["amount": "id"]]] }
        #expect(problems(of: collision).map(\.reason) == ["makes two columns named id"])
    }
}

@Suite struct ColumnFlowTests {
    @Test func columnsFollowTheSteps() throws {
        let steps = try SpecificationParser.parse(pipelineBody()).specification.transformations
        let flow = ColumnFlow.trace(["id", "amount", "created_at", "updated_at"], through: steps)
        #expect(flow.problems.isEmpty)
        #expect(flow.columns == ["day", "total_amount"])
    }

    @Test func aMissingColumnIsNamedAtItsStep() {
        let steps = [
            TransformationStep(.select(columns: ["id", "amount"], rename: ["amount": "value"])),
            TransformationStep(.cast(columns: ["amount": "numeric(12,2)"])),
            TransformationStep(.deduplicate(key: ["id"])),
        ]
        let flow = ColumnFlow.trace(["id", "amount"], through: steps)
        #expect(flow.problems.map(\.path) == ["transformations[1].columns.amount"])
        #expect(flow.columns == ["id", "value"])
    }

    @Test func aSQLStepOrAQuerySourceEndsWhatCanBeKnown() {
        #expect(ColumnFlow.trace(["a"], through: [TransformationStep(.sql(query: "SELECT 1 AS b FROM input"))]).columns == nil)
        let unknown = ColumnFlow.trace(nil, through: [TransformationStep(.deduplicate(key: ["x"]))])
        #expect(unknown.columns == nil && unknown.problems.isEmpty)
    }
}
