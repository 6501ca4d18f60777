import Platform
import SharedModels
import Testing

@Suite struct OpenAPIDocumentTests {
    static let document = OpenAPIDocument(root: [
        "paths": .object([
            "/users/me": .object(["get": .object(["responses": .object(["200": .object([:])])])]),
            "/users/{id}": .object([
                "get": .object(["responses": .object(["200": .object([:])])]),
                "delete": .object(["responses": .object(["204": .object([:])])]),
            ]),
            "/users": .object([
                "get": .object(["responses": .object(["200": .object([:])])]),
                "post": .object(["requestBody": .object([:]), "responses": .object(["201": .object([:]), "422": .string("own")])]),
            ]),
            "/health": .object(["get": .object(["responses": .object(["200": .object([:])])])]),
        ]),
        "components": .object(["responses": .object(["ValidationError": .object([:])])]),
    ])

    @Test func declaredMethodsAreTheUnionOfEveryMatchingTemplate() {
        #expect(Self.document.declaredMethods(forPath: "/users/me") == ["GET", "DELETE"])
        #expect(Self.document.declaredMethods(forPath: "/users/user_7?x=1") == ["GET", "DELETE"])
        #expect(Self.document.declaredMethods(forPath: "/users") == ["GET", "POST"])
        #expect(Self.document.declaredMethods(forPath: "/users/7/role") == nil)
        #expect(Self.document.declaredMethods(forPath: "/nowhere") == nil)
    }

    @Test func operationsWithParametersOrABodyGet422() {
        let documented = Self.document.documentingPlatformAnswers()
        func response(_ path: String, _ method: String, _ status: String) -> JSONValue? {
            guard case .object(let paths)? = documented.root["paths"], case .object(let item)? = paths[path],
                  case .object(let operation)? = item[method], case .object(let responses)? = operation["responses"] else { return nil }
            return responses[status]
        }
        #expect(response("/users/{id}", "get", "422") == .object(["$ref": .string("#/components/responses/ValidationError")]))
        #expect(response("/users", "post", "422") == .string("own"), "a 422 the document lists is kept")
        #expect(response("/users", "get", "422") == nil)
        #expect(response("/health", "get", "422") == nil)
    }
}
