@testable import AuthGateway
import Foundation
import HTTPTypes
import Hummingbird
import NIOHTTP1
import Platform
import SharedModels
import Testing

@Suite struct AccessPolicyTests {
    let policy = AccessPolicy.standard

    @Test(arguments: [
        (HTTPRequest.Method.post, "/api/v1/auth/login", RouteAccess.anonymous),
        (.post, "/api/v1/auth/register", .anonymous),
        (.post, "/api/v1/auth/refresh", .anonymous),
        (.post, "/api/v1/auth/logout", .role(.analyst)),
        (.get, "/api/v1/users/me", .role(.analyst)),
        (.put, "/api/v1/users/user_3", .role(.analyst)),
        (.get, "/api/v1/users", .role(.admin)),
        (.get, "/api/v1/users/user_3", .role(.admin)),
        (.patch, "/api/v1/users/user_3/role", .role(.admin)),
        (.delete, "/api/v1/users/user_3", .role(.admin)),
        (.get, "/api/v1/pipelines", .role(.analyst)),
        (.get, "/api/v1/pipelines/pipeline_1/runs?limit=5", .role(.analyst)),
        (.post, "/api/v1/pipelines/pipeline_1/run", .role(.analyst)),
        (.post, "/api/v1/pipelines", .role(.engineer)),
        (.post, "/api/v1/pipelines/generate", .role(.engineer)),
        (.put, "/api/v1/pipelines/pipeline_1", .role(.engineer)),
        (.delete, "/api/v1/pipelines/pipeline_1", .role(.engineer)),
        (.get, "/api/v1/connections/", .role(.analyst)),
        (.post, "/api/v1/connections/", .role(.engineer)),
        (.post, "/api/v1/connections/4/test", .role(.analyst)),
        (.post, "/api/v1/scheduler/tasks/9/run", .role(.analyst)),
        (.delete, "/api/v1/scheduler/tasks/9", .role(.engineer)),
        (.post, "/api/v1/mvp/datamarts/sales/refresh", .role(.analyst)),
        (.post, "/api/v1/mvp/datamarts/create", .role(.engineer)),
        (.post, "/api/v1/files/upload", .role(.engineer)),
        (.get, "/api/v1/projects", .role(.analyst)),
        (.post, "/api/v1/projects", .role(.architect)),
        (.get, "/api/v1/admin/deleted-entities", .role(.admin)),
        (.get, "/api/v1/observability/metrics", .role(.analyst)),
        (.get, "/api/v1/unknown-thing", .role(.admin)),
    ])
    func routeNeeds(method: HTTPRequest.Method, path: String, access: RouteAccess) {
        #expect(policy.access(method: method, path: path) == access)
    }

    @Test func patternsMatchWholeSegments() {
        #expect(PathPattern("/api/v1/users/*").matches(PathPattern.split("/api/v1/users/user_1")))
        #expect(!PathPattern("/api/v1/users/*").matches(PathPattern.split("/api/v1/users")))
        #expect(!PathPattern("/api/v1/users/*").matches(PathPattern.split("/api/v1/users/user_1/role")))
        #expect(PathPattern("/api/v1/files/**").matches(PathPattern.split("/api/v1/files")))
        #expect(PathPattern("/api/v1/files/**").matches(PathPattern.split("/api/v1/files/a/b/c/")))
        #expect(!PathPattern("/api/v1/files/**").matches(PathPattern.split("/api/v1/filesystem")))
        #expect(PathPattern("/api/v1/users/me").matches(PathPattern.split("/api/v1/users/me?x=1")))
    }
}

@Suite struct RateLimitTests {
    let policy = RateLimitPolicy(enabled: true, window: .seconds(60), perUser: 100, perAdmin: 1000, generation: 10, anonymousPerAddress: 30)

    func user(_ role: UserRole) -> AuthenticatedUser {
        AuthenticatedUser(claims: AccessTokenClaims(userID: "user_5", role: role, tokenID: "t", issuedAt: Date(), lifetime: .seconds(60)))
    }

    @Test func windowsAreAlignedToTheEpoch() {
        let window = RateLimitWindow(now: Date(timeIntervalSince1970: 1_000_030.7), length: .seconds(60))
        #expect(window.index == 16_667)
        #expect(window.resetsAt == 1_000_080)
        #expect(window.key(for: RateLimitBucket(name: "user:user_5", limit: 100)) == "ratelimit:user:user_5:16667")
        let next = RateLimitWindow(now: Date(timeIntervalSince1970: 1_000_080), length: .seconds(60))
        #expect(next.index == 16_667 + 1)
    }

    @Test func bucketsFollowTheCallerAndRoute() {
        #expect(policy.bucket(method: .get, path: "/api/v1/pipelines", user: user(.analyst), clientAddress: "10.0.0.1")
                == RateLimitBucket(name: "user:user_5", limit: 100))
        #expect(policy.bucket(method: .get, path: "/api/v1/pipelines", user: user(.admin), clientAddress: "10.0.0.1")
                == RateLimitBucket(name: "user:user_5", limit: 1000))
        #expect(policy.bucket(method: .post, path: "/api/v1/pipelines/generate", user: user(.engineer), clientAddress: "x")
                == RateLimitBucket(name: "generate:user_5", limit: 10))
        #expect(policy.bucket(method: .post, path: "/api/v1/auth/login", user: nil, clientAddress: "10.0.0.1")
                == RateLimitBucket(name: "anonymous:10.0.0.1", limit: 30))
        var off = policy
        off.enabled = false
        #expect(off.bucket(method: .get, path: "/api/v1/pipelines", user: user(.analyst), clientAddress: "x") == nil)
    }

    @Test func decisionCountsDownAndRefusesPastTheLimit() {
        let atLimit = RateLimitDecision(limit: 10, count: 10, resetsAt: 1060, now: 1042)
        #expect(atLimit.allowed)
        #expect(atLimit.remaining == 0)
        #expect(atLimit.headers[.rateLimitLimit] == "10")
        #expect(atLimit.headers[.rateLimitRemaining] == "0")
        #expect(atLimit.headers[.rateLimitReset] == "1060")
        #expect(atLimit.headers[.retryAfter] == nil)

        let over = RateLimitDecision(limit: 10, count: 11, resetsAt: 1060, now: 1042)
        #expect(!over.allowed)
        #expect(over.retryAfter == 18)
        #expect(over.error.status == .tooManyRequests)
        #expect(over.error.code == .rateLimitExceeded)
        #expect(over.error.headers[.retryAfter] == "18")

        #expect(RateLimitDecision(limit: 10, count: 3, resetsAt: 1060, now: 1060).retryAfter == 1)
        #expect(RateLimitDecision(limit: 10, count: 3, resetsAt: 1060, now: 1000).remaining == 7)
    }
}

@Suite struct ProxyHeaderTests {
    @Test func hopByHopAndSpoofedIdentityHeadersAreDropped() {
        let fields: HTTPFields = [
            .contentType: "application/json", .connection: "keep-alive, X-Secret-Hop", HTTPField.Name("X-Secret-Hop")!: "1",
            HTTPField.Name("Keep-Alive")!: "timeout=5", .transferEncoding: "chunked", HTTPField.Name("TE")!: "trailers",
            HTTPField.Name("Proxy-Authorization")!: "Basic x", .upgrade: "websocket",
            HTTPField.Name("X-Authenticated-User")!: "user_1", HTTPField.Name("X-Authenticated-Role")!: "admin",
            .requestID: "client-id", .authorization: "Bearer t", HTTPField.Name("X-Custom")!: "kept",
        ]
        let user = AuthenticatedUser(claims: AccessTokenClaims(userID: "user_9", role: .analyst, tokenID: "j", issuedAt: Date(), lifetime: .seconds(60)))
        let headers = ProxyHeaders.upstreamRequest(fields, requestID: "req_1", user: user, clientAddress: "127.0.0.1")
        for dropped in ["Connection", "X-Secret-Hop", "Keep-Alive", "Transfer-Encoding", "TE", "Proxy-Authorization", "Upgrade"] {
            #expect(headers[dropped].isEmpty, "\(dropped) must not be forwarded")
        }
        #expect(headers["X-Authenticated-User"] == ["user_9"])
        #expect(headers["X-Authenticated-Role"] == ["analyst"])
        #expect(headers["X-Request-Id"] == ["req_1"])
        #expect(headers["X-Forwarded-For"] == ["127.0.0.1"])
        #expect(headers["Authorization"] == ["Bearer t"])
        #expect(headers["X-Custom"] == ["kept"])
        #expect(headers["Content-Type"] == ["application/json"])

        let anonymous = ProxyHeaders.upstreamRequest(fields, requestID: "req_2", user: nil, clientAddress: nil)
        #expect(anonymous["X-Authenticated-User"].isEmpty)
        #expect(anonymous["X-Authenticated-Role"].isEmpty)
    }

    @Test func responseHopByHopHeadersAreDropped() {
        let fields = ProxyHeaders.clientResponse(HTTPHeaders([
            ("Content-Type", "text/csv"), ("Content-Length", "12"), ("Connection", "close, X-Hop"), ("X-Hop", "1"),
            ("Transfer-Encoding", "chunked"), ("ETag", "\"abc\""), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
        ]))
        #expect(fields[.contentType] == "text/csv")
        #expect(fields[.contentLength] == "12")
        #expect(fields[.eTag] == "\"abc\"")
        #expect(fields[values: .setCookie] == ["a=1", "b=2"])
        #expect(fields[.connection] == nil)
        #expect(fields[HTTPField.Name("X-Hop")!] == nil)
        #expect(fields[.transferEncoding] == nil)
    }

    @Test(arguments: [
        ("/auth/login", "/api/v1/auth/login"), ("/users", "/api/v1/users"), ("/users/me?x=1", "/api/v1/users/me?x=1"),
        ("/files/upload", "/api/v1/files/upload"), ("/files?prefix=a", "/api/v1/files?prefix=a"),
    ])
    func unversionedAliasesMapToV1(path: String, canonical: String) {
        #expect(GatewayResponder<RouterResponder<PlatformRequestContext>>.canonicalPath(path) == canonical)
    }

    @Test(arguments: ["/", "/api/v1/users", "/api/v1/users/", "/api/v1/files/a.csv?x=a//b", "/health"])
    func canonicalPathsPass(path: String) {
        #expect(GatewayResponder<RouterResponder<PlatformRequestContext>>.isCanonical(path))
    }

    @Test(arguments: ["//api/v1/users", "/api//v1/users", "/api/v1/./users", "/api/v1/x/../users", "/api/v1%2Fusers",
                      "/api/v1/%2e%2e/users", "/api\\v1", "http://evil/api/v1/users", "", "*"])
    func nonCanonicalPathsAreRefused(path: String) {
        #expect(!GatewayResponder<RouterResponder<PlatformRequestContext>>.isCanonical(path))
    }

    @Test(arguments: ["/api/v1/users", "/usersx", "/authority", "/health", "/filesystem/x"])
    func otherPathsAreNotAliases(path: String) {
        #expect(GatewayResponder<RouterResponder<PlatformRequestContext>>.canonicalPath(path) == nil)
    }
}

@Suite struct GatewayAnswersTests {
    static let document = OpenAPIDocument(root: ["paths": .object([
        "/api/v1/auth/login": .object(["post": .object(["requestBody": .object([:]), "responses": .object(["200": .object([:])])])]),
        "/api/v1/connections": .object([
            "get": .object(["responses": .object(["200": .object([:])])]),
            "post": .object(["requestBody": .object([:]), "responses": .object(["201": .object([:])])]),
        ]),
        "/api/v1/connections/{id}": .object(["get": .object(["responses": .object(["200": .object([:])])])]),
        "/api/v1/users/me": .object(["get": .object(["responses": .object(["200": .object([:])])])]),
        "/health": .object(["get": .object(["responses": .object(["200": .object([:])])])]),
    ])])

    static func statuses(_ path: String, _ method: String) -> Set<String> {
        let documented = GatewayAnswers.documenting(document, policy: .standard)
        guard case .object(let paths)? = documented.root["paths"], case .object(let item)? = paths[path],
              case .object(let operation)? = item[method], case .object(let responses)? = operation["responses"] else { return [] }
        return Set(responses.keys)
    }

    @Test func eachOperationListsWhatTheGatewayMayAnswerForIt() {
        // Anonymous and served by the gateway: rate-limited, a body, no token.
        #expect(Self.statuses("/api/v1/auth/login", "post") == ["200", "400", "413", "429"])
        // Read by every role, proxied.
        #expect(Self.statuses("/api/v1/connections", "get") == ["200", "401", "429", "503", "504"])
        // Written by engineers and up: 403 for analysts.
        #expect(Self.statuses("/api/v1/connections", "post") == ["201", "400", "401", "403", "413", "429", "503", "504"])
        // A path value could be sent in a form the gateway refuses.
        #expect(Self.statuses("/api/v1/connections/{id}", "get") == ["200", "400", "401", "429", "503", "504"])
        #expect(Self.statuses("/api/v1/users/me", "get") == ["200", "401", "429"])
        #expect(Self.statuses("/health", "get") == ["200"])
    }
}
