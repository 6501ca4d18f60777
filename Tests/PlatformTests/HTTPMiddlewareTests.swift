import Foundation
import Hummingbird
import HummingbirdTesting
import Platform
import SharedModels
import Testing

@Suite struct HTTPMiddlewareTests {
    struct Secret: Error, CustomStringConvertible { var description: String { "internal detail" } }
    struct Body: Decodable { var name: String; var count: Int }

    private func app() -> some ApplicationProtocol {
        let metrics = PlatformMetrics()
        let router = Router(context: PlatformRequestContext.self)
        router.middlewares.add(HTTPMetricsMiddleware(metrics: metrics))
        router.middlewares.add(RequestIDMiddleware())
        router.middlewares.add(ErrorEnvelopeMiddleware(document: Self.routes))
        HealthController(version: "9.9.9", checks: [
            HealthCheck(name: "database") {},
            HealthCheck(name: "redis") { throw Secret() },
        ], metrics: metrics).addRoutes(to: router)
        router.get("boom") { _, _ -> String in throw Secret() }
        router.get("invalid") { _, _ -> String in throw APIError.validation(field: "email", reason: "Invalid email format") }
        router.post("decode") { request, context -> String in
            let body = try await request.decodeJSON(as: Body.self, context: context)
            return body.name
        }
        return Application(router: router)
    }

    /// What the test router's routes document says of them.
    static let routes = OpenAPIDocument(root: ["paths": .object([
        "/decode": .object(["post": .object(["responses": .object([:])])]),
        "/items/{id}": .object(["get": .object(["responses": .object([:])]), "delete": .object(["responses": .object([:])])]),
    ])])

    private func envelope(_ response: TestResponse) throws -> ErrorEnvelope {
        try JSONDecoder.platform.decode(ErrorEnvelope.self, from: Data(buffer: response.body))
    }

    @Test func unknownErrorsBecomeOpaque500s() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/boom", method: .get, headers: [.requestID: "client-req-1"]) { response in
                #expect(response.status == .internalServerError)
                #expect(response.headers[.requestID] == "client-req-1")
                let body = try envelope(response)
                #expect(body.error.code == .internalError)
                #expect(body.error.requestID == "client-req-1")
                #expect(!String(buffer: response.body).contains("internal detail"))
            }
        }
    }

    @Test func validationErrorsCarryTheField() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/invalid", method: .get) { response in
                #expect(response.status == .unprocessableContent)
                let body = try envelope(response)
                #expect(body.error.code == .validationError)
                #expect(body.error.details?["field"] == "email")
                #expect(body.error.requestID?.hasPrefix("req_") == true)
                #expect(response.headers[.requestID] == body.error.requestID)
            }
        }
    }

    @Test func unparseableBodiesAre400AndBadFieldsAre422() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/decode", method: .post, body: ByteBuffer(string: "{not json")) { response in
                #expect(response.status == .badRequest)
                let body = try envelope(response)
                #expect(body.error.code == .badRequest)
            }
            try await client.execute(uri: "/decode", method: .post, body: ByteBuffer(string: #"{"name":"x"}"#)) { response in
                #expect(response.status == .unprocessableContent)
                let body = try envelope(response)
                #expect(body.error.code == .validationError)
                #expect(body.error.details?["field"] == "count")
            }
            try await client.execute(uri: "/decode", method: .post, body: ByteBuffer(string: #"{"name":"x","count":"many"}"#)) { response in
                #expect(response.status == .unprocessableContent)
                let body = try envelope(response)
                #expect(body.error.details?["field"] == "count")
                #expect(body.error.message.contains("must be an integer"))
            }
            try await client.execute(uri: "/decode", method: .post, body: ByteBuffer(string: "[1, 2]")) { response in
                #expect(response.status == .unprocessableContent)
                let body = try envelope(response)
                #expect(body.error.details?["field"] == "body")
                #expect(body.error.details?["reason"] == "must be a JSON object")
            }
        }
    }

    @Test func aDocumentedPathWithoutTheMethodIs405NamingTheOthers() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/decode", method: .get) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "POST")
                let body = try envelope(response)
                #expect(body.error.code == .methodNotAllowed)
            }
            try await client.execute(uri: "/items/7", method: .put) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET, DELETE")
            }
            try await client.execute(uri: "/items/7", method: .head) { response in
                #expect(response.status != .methodNotAllowed)
            }
            // A path the document does not describe stays a 404.
            try await client.execute(uri: "/items/7/parts", method: .put) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test func unknownRoutesAre404Envelopes() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/nope", method: .get) { response in
                #expect(response.status == .notFound)
                let body = try envelope(response)
                #expect(body.error.code == .resourceNotFound)
            }
        }
    }

    @Test func insaneRequestIDsAreReplaced() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/health", method: .get, headers: [.requestID: "bad id\twith spaces"]) { response in
                #expect(response.headers[.requestID]?.hasPrefix("req_") == true)
            }
        }
    }

    @Test func healthAndReadiness() async throws {
        try await app().test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                let health = try JSONDecoder.platform.decode(HealthStatus.self, from: Data(buffer: response.body))
                #expect(health.status == "healthy")
                #expect(health.version == "9.9.9")
            }
            try await client.execute(uri: "/health/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let readiness = try JSONDecoder.platform.decode(ReadinessStatus.self, from: Data(buffer: response.body))
                #expect(readiness.components["database"]?.status == "healthy")
                #expect(readiness.components["redis"]?.status == "unhealthy")
                #expect(readiness.components["redis"]?.error?.contains("internal detail") == false)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains(#"http_requests_total{route="/health",method="GET",status="200"}"#))
                #expect(text.contains("http_request_duration_seconds_bucket"))
            }
        }
    }
}
