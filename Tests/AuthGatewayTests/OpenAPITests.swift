import Foundation
import Platform
import SharedModels
import Testing

@Suite struct OpenAPITests {
    static let services = ["AuthGateway", "ConnectionsVault", "Scheduler", "PipelineRunner", "FileStorage", "Observability"]

    static func document(of service: String) throws -> OpenAPIDocument {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try OpenAPIDocument.load(directory: root.appendingPathComponent("Services/\(service)/\(service)/OpenAPI"))
    }

    @Test(arguments: services)
    func eachServiceDocumentIsValidOpenAPI31(service: String) throws {
        let document = try Self.document(of: service)
        #expect(document.root["openapi"] == .string("3.1.0"))
        #expect(document.root["info"] != nil)
        #expect(document.unresolvedReferences == [], "dangling $ref in \(service)")
        // An unquoted comma inside a YAML flow mapping splits a description into bogus null-valued keys.
        #expect(Self.nullValues(in: .object(document.root)) == [], "null values (unquoted commas?) in \(service)")
        for (path, method, operation) in document.operations {
            #expect(path.hasPrefix("/"), "\(method) \(path)")
            #expect(operation["responses"] != nil, "\(method) \(path) has no responses")
            #expect(operation["summary"] != nil, "\(method) \(path) has no summary")
        }
    }

    static func nullValues(in value: JSONValue, at path: String = "") -> [String] {
        switch value {
        case .null: [path]
        case .object(let object): object.flatMap { nullValues(in: $0.value, at: path + "/" + $0.key) }
        // `null` inside a list is deliberate (`enum: [a, null]`); the trap makes null-valued keys.
        case .array(let array): array.flatMap { $0 == .null ? [] : nullValues(in: $0, at: path) }
        default: []
        }
    }

    @Test func gatewayDocumentDescribesItsRoutes() throws {
        let document = try Self.document(of: "AuthGateway")
        let operations = Set(document.operations.map { "\($0.method.uppercased()) \($0.path)" })
        for expected in ["POST /api/v1/auth/register", "POST /api/v1/auth/login", "POST /api/v1/auth/refresh", "POST /api/v1/auth/logout",
                         "GET /api/v1/users/me", "GET /api/v1/users", "POST /api/v1/users", "GET /api/v1/users/{id}",
                         "PUT /api/v1/users/{id}", "DELETE /api/v1/users/{id}", "PATCH /api/v1/users/{id}/role",
                         "GET /health", "GET /health/detailed", "GET /.well-known/jwks.json"] {
            #expect(operations.contains(expected), "\(expected) is not documented")
        }
    }

    @Test func theServicesDocumentsMergeWithoutConflicts() throws {
        var merged = try Self.document(of: "AuthGateway")
        for service in Self.services.dropFirst() {
            let (result, conflicts) = merged.merging(try Self.document(of: service))
            #expect(conflicts == [], "\(service) redefines: \(conflicts)")
            merged = result
        }
        #expect(merged.unresolvedReferences == [])
        #expect(merged.operations.contains { $0.path == "/api/v1/connections/{id}/test" })
        #expect(merged.operations.contains { $0.path == "/api/v1/scheduler/tasks/{id}/runs" })
        #expect(merged.operations.contains { $0.path == "/api/v1/mvp/triggers/{trigger_id}/webhook" })
    }

    @Test func mergingAddsPathsComponentsAndTagsAndReportsConflicts() throws {
        let base = try OpenAPIDocument(yaml: """
            openapi: 3.1.0
            info: {title: base, version: "1"}
            tags: [{name: auth}]
            paths:
              /a: {get: {summary: a, responses: {'200': {description: ok}}}}
            components:
              schemas:
                Shared: {type: string}
            """)
        let other = try OpenAPIDocument(yaml: """
            openapi: 3.1.0
            info: {title: other, version: "2"}
            tags: [{name: auth}, {name: files}]
            paths:
              /a: {get: {summary: different, responses: {'200': {description: ok}}}}
              /b: {post: {summary: b, responses: {'201': {description: made}}}}
            components:
              schemas:
                Shared: {type: integer}
                File: {type: object}
            """)
        let (merged, conflicts) = base.merging(other)
        #expect(merged.operations.map { "\($0.method) \($0.path)" } == ["get /a", "post /b"])
        #expect(merged.operations[0].operation["summary"] == .string("a"))
        #expect(merged.root["info"] == base.root["info"])
        #expect(merged.resolve("#/components/schemas/File") == .object(["type": .string("object")]))
        #expect(merged.resolve("#/components/schemas/Shared") == .object(["type": .string("string")]))
        #expect(merged.root["tags"] == .array([.object(["name": .string("auth")]), .object(["name": .string("files")])]))
        #expect(conflicts.sorted() == ["components.schemas.Shared", "paths./a"])
    }

    @Test func pageListsEveryOperationAndEscapesText() throws {
        var document = try Self.document(of: "AuthGateway")
        document.root["info"] = .object(["title": .string("<script>alert(1)</script>"), "version": .string("1")])
        let page = OpenAPIPage.render(document)
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        #expect(!page.contains("<script>"))
        #expect(page.contains("&lt;script&gt;"))
        #expect(!page.contains("http://") && !page.contains("https://"), "the page must not load anything from elsewhere")
        for (path, method, _) in document.operations {
            #expect(page.contains("<code>\(path)</code>"), "\(method) \(path) missing from the page")
        }
        #expect(page.contains("id=\"schema-User\""))
    }
}
