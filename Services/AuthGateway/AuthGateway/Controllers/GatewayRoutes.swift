import AsyncHTTPClient
import Foundation
import Hummingbird
import Platform
import SharedModels

/// The gateway's own small routes: the public key, detailed health, removed and moved paths, and the proxy
/// routes of every service prefix.
struct GatewayRoutes: Sendable {
    let signer: AccessTokenSigner
    let proxy: GatewayProxy
    let health: HealthController<PlatformRequestContext>

    static let proxiedMethods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .head, .options]

    func addRoutes(to router: Router<PlatformRequestContext>) {
        let jwks = signer.jwks
        router.get(".well-known/jwks.json") { _, _ in
            var response = try JSONResponse(jwks)
            response.headers[.cacheControl] = "public, max-age=300"
            return response
        }
        router.get("health/detailed") { _, _ in
            let readiness = await health.readiness()
            let shared = ["database", "redis"].allSatisfy { readiness.components[$0]?.status == "healthy" }
            let all = readiness.components.values.allSatisfy { $0.status == "healthy" }
            var detailed = readiness
            detailed.status = all ? "healthy" : shared ? "degraded" : "unhealthy"
            return try JSONResponse(detailed, status: shared ? .ok : .serviceUnavailable)
        }
        // The Tasks API was removed in v2 (000-changelog-v2.md): scheduler tasks replace it.
        for path in ["tasks", "tasks/**", "api/v1/tasks", "api/v1/tasks/**"] {
            for method in Self.proxiedMethods {
                router.on(RouterPath(path), method: method) { _, _ -> Response in
                    throw APIError(.gone, code: .gone, message: "The Tasks API was removed; use /api/v1/scheduler/tasks",
                                   details: ["replacement": .string("/api/v1/scheduler/tasks")])
                }
            }
        }
        // The legacy connections path moves to /api/v1 with the method and body kept (308).
        for path in ["api/connections", "api/connections/**"] {
            for method in Self.proxiedMethods {
                router.on(RouterPath(path), method: method) { request, _ -> Response in
                    let target = "/api/v1" + (request.head.path ?? "/api/connections").dropFirst("/api".count)
                    return Response(status: .permanentRedirect, headers: [.location: target])
                }
            }
        }
        for upstream in Upstream.allCases {
            for prefix in upstream.publicPrefixes {
                for path in [prefix, prefix + "/**"] {
                    for method in Self.proxiedMethods {
                        router.on(RouterPath(String(path.dropFirst())), method: method) { request, context in
                            try await proxy.forward(request, context: context, to: upstream)
                        }
                    }
                }
            }
        }
        for method in [HTTPRequest.Method.get, .head] {
            router.on("health/storage", method: method) { request, context in
                try await proxy.forward(request, context: context, to: .fileStorage)
            }
        }
    }

    /// A readiness check of a service behind the gateway: its `/health` answers 200.
    static func serviceCheck(_ upstream: Upstream, base: String, httpClient: HTTPClient) -> HealthCheck {
        HealthCheck(name: upstream.rawValue) {
            let response = try await httpClient.fetch(HTTPClientRequest(url: base + "/health"), timeout: .seconds(2), limit: 64 * 1024)
            guard response.status == .ok else { throw APIError.upstreamUnavailable(upstream) }
        }
    }
}
