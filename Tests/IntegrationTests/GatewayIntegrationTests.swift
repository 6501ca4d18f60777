import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import Platform
import PlatformTesting
import Testing

extension Integration {
    /// The gateway running with real PostgreSQL and Redis, in front of the five services.
    @Suite struct GatewayTests {
        @Test func registerLoginMeRefreshLogoutFlow() async throws {
            try await GatewayStack.run { stack in
                let username = TestEnvironment.uniqueName("flow")
                let registered = try await stack.send(.POST, "/api/v1/auth/register", json: [
                    "username": username, "email": "\(username)@Example.com", "password": "Secure-Pass123", "full_name": "Flow User",
                ])
                #expect(registered.status == 201)
                #expect((registered.json["id"] as? String)?.hasPrefix("user_") == true)
                #expect(registered.json["role"] as? String == "analyst")
                #expect(registered.json["created_at"] is String)
                #expect(registered.json["password"] == nil && registered.json["password_hash"] == nil)
                #expect(!String(decoding: registered.body, as: UTF8.self).contains("$2"))

                let again = try await stack.send(.POST, "/api/v1/auth/register", json: [
                    "username": username.uppercased(), "email": "other-\(username)@example.com", "password": "Secure-Pass123",
                ])
                #expect(again.status == 409)
                #expect(again.errorCode == "DUPLICATE_RESOURCE")
                let invalid = try await stack.send(.POST, "/api/v1/auth/register", json: [
                    "username": "x", "email": "a@example.com", "password": "Secure-Pass123",
                ])
                #expect(invalid.status == 422)
                #expect(((invalid.json["error"] as? [String: Any])?["details"] as? [String: Any])?["field"] as? String == "username")

                let login = try await stack.send(.POST, "/api/v1/auth/login", json: ["username": username, "password": "Secure-Pass123"])
                #expect(login.status == 200)
                #expect(login.json["token_type"] as? String == "bearer")
                #expect(login.json["expires_in"] as? Int == 3600)
                let access = try #require(login.json["access_token"] as? String)
                let refresh = try #require(login.json["refresh_token"] as? String)
                #expect(login.header("X-RateLimit-Limit") != nil)

                let me = try await stack.send(.GET, "/api/v1/users/me", token: access)
                #expect(me.status == 200)
                #expect(me.json["username"] as? String == username)
                #expect(me.json["last_login"] is String)
                #expect(me.header("X-RateLimit-Limit") == "40")
                #expect(me.header("X-RateLimit-Remaining") == "39")
                #expect(me.header("X-Content-Type-Options") == "nosniff")
                #expect(me.header("X-Request-Id") != nil)

                let refreshed = try await stack.send(.POST, "/api/v1/auth/refresh", json: ["refresh_token": refresh])
                #expect(refreshed.status == 200)
                let newAccess = try #require(refreshed.json["access_token"] as? String)
                let newRefresh = try #require(refreshed.json["refresh_token"] as? String)
                #expect(newRefresh != refresh)
                #expect(try await stack.send(.GET, "/api/v1/users/me", token: newAccess).status == 200)

                let logout = try await stack.send(.POST, "/api/v1/auth/logout", token: newAccess)
                #expect(logout.status == 204)
                let rejected = try await stack.send(.GET, "/api/v1/users/me", token: newAccess)
                #expect(rejected.status == 401)
                #expect(rejected.errorCode == "INVALID_TOKEN")
                let refreshAfterLogout = try await stack.send(.POST, "/api/v1/auth/refresh", json: ["refresh_token": newRefresh])
                #expect(refreshAfterLogout.status == 401)

                // Unversioned aliases of 004 reach the same routes.
                let aliasLogin = try await stack.send(.POST, "/auth/login", json: ["username": username, "password": "Secure-Pass123"])
                #expect(aliasLogin.status == 200)
                let aliasMe = try await stack.send(.GET, "/users/me", token: try #require(aliasLogin.json["access_token"] as? String))
                #expect(aliasMe.json["username"] as? String == username)

                let wrong = try await stack.send(.POST, "/api/v1/auth/login", json: ["username": username, "password": "nope-nope-1"])
                let unknown = try await stack.send(.POST, "/api/v1/auth/login", json: ["username": "nobody-\(username)", "password": "nope-nope-1"])
                #expect(wrong.status == 401 && unknown.status == 401)
                #expect(wrong.errorCode == "AUTH_FAILED" && unknown.errorCode == "AUTH_FAILED")
                #expect(try await stack.send(.GET, "/api/v1/users/me").status == 401)
                #expect(try await stack.send(.GET, "/api/v1/users/me", token: "garbage").errorCode == "INVALID_TOKEN")
            }
        }

        @Test func refreshTokenReuseRevokesTheFamily() async throws {
            try await GatewayStack.run { stack in
                let user = try await stack.user()
                let first = try await stack.send(.POST, "/api/v1/auth/refresh", json: ["refresh_token": user.refresh])
                #expect(first.status == 200)
                let access = try #require(first.json["access_token"] as? String)
                let reuse = try await stack.send(.POST, "/api/v1/auth/refresh", json: ["refresh_token": user.refresh])
                #expect(reuse.status == 401)
                #expect(reuse.errorCode == "INVALID_TOKEN")
                // Both the original access token and the one issued by the rotation are now rejected.
                #expect(try await stack.send(.GET, "/api/v1/users/me", token: access).status == 401)
                #expect(try await stack.send(.GET, "/api/v1/users/me", token: user.access).status == 401)
                let next = try #require(first.json["refresh_token"] as? String)
                #expect(try await stack.send(.POST, "/api/v1/auth/refresh", json: ["refresh_token": next]).status == 401)
            }
        }

        /// Two clients present the same refresh token at once: one rotation wins, the other is a reuse, and the
        /// reuse must also revoke what the winner was just issued, however the two interleave.
        @Test func concurrentReuseRevokesTheWinnersTokensToo() async throws {
            try await GatewayStack.run { stack in
                for _ in 0..<5 {
                    let user = try await stack.user()
                    async let first = stack.send(.POST, "/api/v1/auth/refresh", json: ["refresh_token": user.refresh])
                    async let second = stack.send(.POST, "/api/v1/auth/refresh", json: ["refresh_token": user.refresh])
                    let replies = try await [first, second]
                    #expect(replies.map(\.status).sorted() == [200, 401])
                    let winner = try #require(replies.first { $0.status == 200 })
                    let access = try #require(winner.json["access_token"] as? String)
                    let refresh = try #require(winner.json["refresh_token"] as? String)
                    #expect(try await stack.send(.GET, "/api/v1/users/me", token: access).status == 401)
                    #expect(try await stack.send(.POST, "/api/v1/auth/refresh", json: ["refresh_token": refresh]).status == 401)
                }
            }
        }

        @Test func fiveFailedLoginsLockTheAccount() async throws {
            try await GatewayStack.run { stack in
                let user = try await stack.user()
                for _ in 1...4 {
                    let failed = try await stack.send(.POST, "/api/v1/auth/login", json: ["username": user.username, "password": "wrong-pass-1"])
                    #expect(failed.errorCode == "AUTH_FAILED")
                }
                let locked = try await stack.send(.POST, "/api/v1/auth/login", json: ["username": user.username, "password": "wrong-pass-1"])
                #expect(locked.status == 429)
                #expect(locked.errorCode == "ACCOUNT_LOCKED")
                #expect(Int(locked.header("Retry-After") ?? "") ?? 0 > 800)
                let right = try await stack.send(.POST, "/api/v1/auth/login", json: ["username": user.username, "password": "passw0rd-analyst"])
                #expect(right.status == 429)
            }
        }

        /// Each role against a representative route of each service: 403 where the role table forbids it,
        /// otherwise the request reaches the owning service, which verifies the token itself with the gateway's
        /// JWKS and answers: never 401 or 403, and never a 500.
        @Test func roleMatrix() async throws {
            try await GatewayStack.run { stack in
                var tokens: [GatewayStack.UserRoleName: String] = [:]
                for role in GatewayStack.UserRoleName.allCases { tokens[role] = try await stack.user(role).access }
                let routes: [(HTTPMethod, String, String?, minimum: GatewayStack.UserRoleName)] = [
                    (.GET, "/api/v1/connections/", "connections-vault", .analyst),
                    (.POST, "/api/v1/connections/", "connections-vault", .engineer),
                    (.POST, "/api/v1/scheduler/tasks/1/run", "scheduler", .analyst),
                    (.POST, "/api/v1/scheduler/tasks/", "scheduler", .engineer),
                    (.GET, "/api/v1/pipelines", "pipeline-runner", .analyst),
                    (.POST, "/api/v1/pipelines", "pipeline-runner", .engineer),
                    (.POST, "/api/v1/projects", "pipeline-runner", .architect),
                    (.GET, "/api/v1/admin/deleted-entities", "pipeline-runner", .admin),
                    (.GET, "/api/v1/files", "file-storage", .analyst),
                    (.DELETE, "/api/v1/files/report.csv", "file-storage", .engineer),
                    (.GET, "/api/v1/observability/metrics", "observability", .analyst),
                    (.GET, "/api/v1/users", nil, .admin),
                ]
                let order = GatewayStack.UserRoleName.allCases
                for (method, path, service, minimum) in routes {
                    for role in order {
                        let reply = try await stack.send(method, path, token: tokens[role])
                        let allowed = order.firstIndex(of: role)! >= order.firstIndex(of: minimum)!
                        if allowed {
                            #expect(reply.status != 401 && reply.status != 403, "\(role) \(method) \(path): \(reply.status)")
                            // The service answered (a route that does not exist yet says 404, a bodiless POST 400).
                            #expect(service != nil || reply.status == 200, "\(role) \(method) \(path)")
                            #expect(reply.status < 500, "\(role) \(method) \(path): \(reply.status)")
                        } else {
                            #expect(reply.status == 403, "\(role) \(method) \(path): \(reply.status)")
                            #expect(reply.errorCode == "PERMISSION_DENIED")
                        }
                    }
                    #expect(try await stack.send(method, path).status == 401, "anonymous \(method) \(path)")
                    // Spellings the router would read as the same route do not get past the rules.
                    #expect(try await stack.send(method, "/" + path, token: tokens[.analyst]).status == 400, "//\(path)")
                    // The service itself refuses a request that bypasses the gateway without a valid token.
                    if let service, let base = stack.services[service] {
                        #expect(try await stack.send(method, path, base: base).status == 401, "direct \(method) \(path)")
                        #expect(try await stack.send(method, "/" + path, base: base).status == 401, "direct //\(path)")
                        #expect(try await stack.send(method, path, token: "forged", base: base).errorCode == "INVALID_TOKEN")
                        let direct = try await stack.send(method, path, token: tokens[.analyst], base: base).status
                        #expect(direct != 401 && direct < 500, "direct with a token \(method) \(path): \(direct)")
                    }
                }
            }
        }

        @Test func requestsOverTheLimitGet429WithHeaders() async throws {
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_USER": "5", "RATELIMIT_WINDOW_SECONDS": "3600"]) { stack in
                let user = try await stack.user()
                var replies: [GatewayStack.Reply] = []
                for _ in 1...6 { replies.append(try await stack.send(.GET, "/api/v1/users/me", token: user.access)) }
                // A window that ended mid-loop would reset the count: then the run proves nothing, so say so.
                try #require(Set(replies.map { $0.header("X-RateLimit-Reset") }).count == 1, "the window rolled over during the test")
                #expect(replies[0...4].map(\.status) == [200, 200, 200, 200, 200])
                #expect(replies[0...4].map { $0.header("X-RateLimit-Remaining") } == ["4", "3", "2", "1", "0"])
                let refused = replies[5]
                #expect(refused.status == 429)
                #expect(refused.errorCode == "RATE_LIMIT_EXCEEDED")
                #expect(refused.header("X-RateLimit-Limit") == "5")
                #expect(refused.header("X-RateLimit-Remaining") == "0")
                let retryAfter = try #require(Int(refused.header("Retry-After") ?? ""))
                #expect(retryAfter >= 1 && retryAfter <= 3600)
            }
        }

        @Test func anonymousRoutesAreLimitedPerClientAddress() async throws {
            try await GatewayStack.run(gatewaySettings: ["RATELIMIT_ANONYMOUS": "3", "GATEWAY_TRUST_FORWARDED_FOR": "true"]) { stack in
                let address = "198.51.100.\(Int.random(in: 1...254)), 10.0.0.1"
                var statuses: [Int] = []
                for _ in 1...4 {
                    let reply = try await stack.send(.POST, "/api/v1/auth/login", json: ["username": "nobody", "password": "nope-nope-1"],
                                                     headers: [("X-Forwarded-For", address)])
                    statuses.append(reply.status)
                }
                #expect(statuses == [401, 401, 401, 429])
                // Another address has its own allowance.
                let other = try await stack.send(.POST, "/api/v1/auth/login", json: ["username": "nobody", "password": "nope-nope-1"],
                                                 headers: [("X-Forwarded-For", "203.0.113.\(Int.random(in: 1...254))")])
                #expect(other.status == 401)
                #expect(other.header("X-RateLimit-Limit") == "3")
            }
        }

        @Test func uploadsOverTheLimitAre413() async throws {
            let echoPort = try TestEnvironment.freePort()
            try await GatewayStack.run(
                replace: ["FILE_STORAGE": "http://127.0.0.1:\(echoPort)"], extra: [EchoUpstream.app(port: echoPort)],
                gatewaySettings: ["GATEWAY_UPLOAD_MAX_BYTES": "1000"]
            ) { stack in
                let user = try await stack.user(.engineer)
                let declared = try await stack.send(.POST, "/api/v1/files/upload", token: user.access, body: .bytes(Array(repeating: 7, count: 1001)))
                #expect(declared.status == 413)
                #expect(declared.errorCode == "PAYLOAD_TOO_LARGE")
                let small = try await stack.send(.POST, "/api/v1/files/upload", token: user.access, body: .bytes(Array(repeating: 7, count: 1000)))
                #expect(small.status == 200)
                // Without a declared length the gateway counts while streaming.
                let chunks = AsyncStream<ByteBuffer> { continuation in
                    for _ in 0..<5 { continuation.yield(ByteBuffer(bytes: Array(repeating: UInt8(1), count: 400))) }
                    continuation.finish()
                }
                let streamed = try await stack.send(.POST, "/api/v1/files/upload", token: user.access, body: .stream(chunks, length: .unknown))
                #expect(streamed.status == 413)
                #expect(streamed.errorCode == "PAYLOAD_TOO_LARGE")
            }
        }

        @Test func uploadOf16MBArrivesByteIdentical() async throws {
            let echoPort = try TestEnvironment.freePort()
            try await GatewayStack.run(replace: ["FILE_STORAGE": "http://127.0.0.1:\(echoPort)"], extra: [EchoUpstream.app(port: echoPort)]) { stack in
                let user = try await stack.user(.engineer)
                var generator = SystemRandomNumberGenerator()
                let words = (0..<(2 << 20)).map { _ in generator.next() }
                let payload = words.withUnsafeBytes { Array($0) }
                let expected = SHA256.hash(data: payload).map { String(format: "%02x", $0) }.joined()
                let reply = try await stack.send(.POST, "/api/v1/files/upload?folder=a", token: user.access,
                                                 headers: [("Content-Type", "application/octet-stream"), ("X-Request-Id", "upload-test-1"),
                                                           ("X-Authenticated-Role", "admin")],
                                                 body: .bytes(payload))
                #expect(reply.status == 200)
                #expect(reply.json["sha256"] as? String == expected)
                #expect(reply.json["bytes"] as? Int == 16 << 20)
                #expect(reply.json["path"] as? String == "/api/v1/files/upload?folder=a")
                #expect(reply.json["request_id"] as? String == "upload-test-1")
                #expect(reply.json["user"] as? String == user.id)
                #expect(reply.json["role"] as? String == "engineer")
                // Streamed, not buffered: the upstream saw the body in many chunks, none near the whole size.
                #expect((reply.json["chunks"] as? Int ?? 0) > 1)
                #expect((reply.json["largest_chunk"] as? Int ?? Int.max) < 4 << 20)
                #expect(reply.header("X-Request-Id") == "upload-test-1")
            }
        }

        @Test func upstreamDownIs503InTheEnvelope() async throws {
            let closedPort = try TestEnvironment.freePort()
            try await GatewayStack.run(replace: ["OBSERVABILITY": "http://127.0.0.1:\(closedPort)"]) { stack in
                let user = try await stack.user()
                let reply = try await stack.send(.GET, "/api/v1/observability/metrics", token: user.access)
                #expect(reply.status == 503)
                #expect(reply.errorCode == "SERVICE_UNAVAILABLE")
                #expect((reply.json["error"] as? [String: Any])?["request_id"] is String)
                #expect(reply.header("X-RateLimit-Limit") != nil)

                let health = try await stack.send(.GET, "/health/detailed")
                #expect(health.status == 200)
                #expect(health.json["status"] as? String == "degraded")
                let components = try #require(health.json["components"] as? [String: [String: Any]])
                #expect(components["observability"]?["status"] as? String == "unhealthy")
                for name in ["database", "redis", "connections-vault", "scheduler", "pipeline-runner", "file-storage"] {
                    #expect(components[name]?["status"] as? String == "healthy", "\(name)")
                    #expect(components[name]?["latency_ms"] is Double || components[name]?["latency_ms"] is Int, "\(name)")
                }
            }
        }

        @Test func silentUpstreamIs504InTheEnvelope() async throws {
            let slowPort = try TestEnvironment.freePort()
            try await GatewayStack.run(
                replace: ["OBSERVABILITY": "http://127.0.0.1:\(slowPort)"], extra: [EchoUpstream.app(port: slowPort)],
                gatewaySettings: ["GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "1"]
            ) { stack in
                let user = try await stack.user()
                let reply = try await stack.send(.GET, "/api/v1/observability/slow", token: user.access)
                #expect(reply.status == 504)
                #expect(reply.errorCode == "GATEWAY_TIMEOUT")
            }
        }

        @Test func removedMovedAndPublicPaths() async throws {
            try await GatewayStack.run { stack in
                let tasks = try await stack.send(.POST, "/tasks/", json: ["title": "x"])
                #expect(tasks.status == 410)
                #expect(tasks.errorCode == "GONE")
                #expect(String(decoding: tasks.body, as: UTF8.self).contains("/api/v1/scheduler/tasks"))
                #expect(try await stack.send(.GET, "/tasks/7").status == 410)

                let moved = try await stack.send(.GET, "/api/connections/3?x=1")
                #expect(moved.status == 308)
                #expect(moved.header("Location") == "/api/v1/connections/3?x=1")

                let jwks = try await stack.send(.GET, "/.well-known/jwks.json")
                let keys = try #require(jwks.json["keys"] as? [[String: Any]])
                #expect(keys.first?["kty"] as? String == "OKP")
                #expect(keys.first?["crv"] as? String == "Ed25519")

                let health = try await stack.send(.GET, "/health")
                #expect(health.status == 200)
                #expect(health.json["status"] as? String == "healthy")

                let tooLarge = try await stack.send(.POST, "/api/v1/auth/login", headers: [("Content-Type", "application/json")],
                                                    body: .bytes(Array(repeating: UInt8(ascii: " "), count: (1 << 20) + 10)))
                #expect(tooLarge.status == 413)
                let malformed = try await stack.send(.POST, "/api/v1/auth/login", headers: [("Content-Type", "application/json")],
                                                     body: .bytes(Array("{not json".utf8)))
                #expect(malformed.status == 400)
            }
        }

        @Test func oneOpenAPIDocumentAndItsPage() async throws {
            try await GatewayStack.run { stack in
                let spec = try await stack.send(.GET, "/openapi.json")
                #expect(spec.status == 200)
                #expect(spec.json["openapi"] as? String == "3.1.0")
                let paths = try #require(spec.json["paths"] as? [String: Any])
                #expect(paths["/api/v1/auth/login"] != nil)
                // The services' own documents were fetched and merged: their tags are there, none is missing.
                let tags = Set((spec.json["tags"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String })
                #expect(tags.isSuperset(of: ["auth", "users", "connections", "scheduler", "pipelines", "files", "observability"]))
                #expect(spec.json["x-unavailable-services"] == nil)
                let direct = try await stack.send(.GET, "/openapi.json", base: try #require(stack.services["scheduler"]))
                #expect(direct.status == 200)

                let page = try await stack.send(.GET, "/docs")
                #expect(page.status == 200)
                #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
                #expect(page.header("Content-Security-Policy")?.contains("default-src 'none'") == true)
                #expect(String(decoding: page.body, as: UTF8.self).contains("<code>/api/v1/auth/login</code>"))
            }
        }

        @Test func corsAnswersConfiguredOriginsOnly() async throws {
            try await GatewayStack.run(gatewaySettings: ["GATEWAY_CORS_ORIGINS": "https://app.example.com"]) { stack in
                let preflight = try await stack.send(.OPTIONS, "/api/v1/pipelines", headers: [
                    ("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST"),
                ])
                #expect(preflight.status == 204)
                #expect(preflight.header("Access-Control-Allow-Origin") == "https://app.example.com")
                #expect(preflight.header("Access-Control-Allow-Headers")?.contains("Authorization") == true)
                let user = try await stack.user()
                let allowed = try await stack.send(.GET, "/api/v1/users/me", token: user.access, headers: [("Origin", "https://app.example.com")])
                #expect(allowed.header("Access-Control-Allow-Origin") == "https://app.example.com")
                #expect(allowed.header("Access-Control-Expose-Headers")?.contains("X-RateLimit-Remaining") == true)
                let foreign = try await stack.send(.GET, "/api/v1/users/me", token: user.access, headers: [("Origin", "https://evil.example")])
                #expect(foreign.status == 200)
                #expect(foreign.header("Access-Control-Allow-Origin") == nil)
            }
        }

        @Test func adminManagesUsers() async throws {
            try await GatewayStack.run { stack in
                let admin = try await stack.user(.admin)
                let created = try await stack.send(.POST, "/api/v1/users", token: admin.access, json: [
                    "username": TestEnvironment.uniqueName("made"), "email": "\(TestEnvironment.uniqueName("m"))@example.com",
                    "password": "Made-pass1", "role": "engineer",
                ])
                #expect(created.status == 201)
                #expect(created.json["role"] as? String == "engineer")
                let id = try #require(created.json["id"] as? String)
                let list = try await stack.send(.GET, "/api/v1/users?limit=2&offset=0", token: admin.access)
                #expect((list.json["items"] as? [Any])?.count == 2)
                #expect((list.json["total"] as? Int ?? 0) >= 3)
                #expect(try await stack.send(.GET, "/api/v1/users?limit=0", token: admin.access).status == 422)
                let promoted = try await stack.send(.PATCH, "/api/v1/users/\(id)/role", token: admin.access, json: ["role": "architect"])
                #expect(promoted.json["role"] as? String == "architect")
                #expect(try await stack.send(.PATCH, "/api/v1/users/\(id)/role", token: admin.access, json: ["role": "king"]).status == 422)
                #expect(try await stack.send(.DELETE, "/api/v1/users/\(id)", token: admin.access).status == 204)
                #expect(try await stack.send(.GET, "/api/v1/users/\(id)", token: admin.access).status == 404)
                #expect(try await stack.send(.GET, "/api/v1/users/user_999999999", token: admin.access).errorCode == "RESOURCE_NOT_FOUND")
            }
        }
    }
}

/// A stand-in for a service that receives uploads: it reads the body as it streams in and answers with its
/// SHA-256, size, how it arrived in chunks, and the headers the gateway set.
enum EchoUpstream {
    static func app(port: Int) -> some ApplicationProtocol {
        let router = Router()
        router.post("api/v1/files/upload") { request, context -> Response in
            var hasher = SHA256()
            var bytes = 0
            var chunks = 0
            var largest = 0
            for try await chunk in request.body {
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                bytes += chunk.readableBytes
                chunks += 1
                largest = max(largest, chunk.readableBytes)
            }
            let summary: [String: Any] = [
                "sha256": hasher.finalize().map { String(format: "%02x", $0) }.joined(), "bytes": bytes, "chunks": chunks,
                "largest_chunk": largest, "path": request.head.path ?? "",
                "request_id": request.headers[.init("X-Request-Id")!] ?? "", "user": request.headers[.init("X-Authenticated-User")!] ?? "",
                "role": request.headers[.init("X-Authenticated-Role")!] ?? "",
            ]
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(data: try JSONSerialization.data(withJSONObject: summary))))
        }
        // Answers long after the gateway's read timeout in the 504 test.
        router.get("api/v1/observability/slow") { _, _ -> String in
            try await Task.sleep(for: .seconds(5))
            return "late"
        }
        router.get("health") { _, _ in "ok" }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: TestEnvironment.logger)
    }
}
