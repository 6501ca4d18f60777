import Foundation
import Hummingbird
import SharedModels

/// A named dependency check for `/health/ready`; it throws when the dependency is unusable.
public struct HealthCheck: Sendable {
    /// Component name in the answer (`database`, `redis`, ...).
    public let name: String
    /// The check itself.
    public let check: @Sendable () async throws -> Void

    /// Creates a check.
    public init(name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }
}

/// `GET /health` (liveness), `GET /health/ready` (dependencies; 503 when one fails) and `GET /metrics`.
public struct HealthController<Context: RequestContext>: Sendable {
    /// Reported version.
    public let version: String
    /// Dependencies checked by readiness.
    public let checks: [HealthCheck]
    /// Source of `/metrics`.
    public let metrics: PlatformMetrics
    /// How long one check may take before it counts as failed.
    public let checkTimeout: Duration

    /// Creates the controller.
    public init(version: String, checks: [HealthCheck], metrics: PlatformMetrics, checkTimeout: Duration = .seconds(3)) {
        self.version = version
        self.checks = checks
        self.metrics = metrics
        self.checkTimeout = checkTimeout
    }

    /// Adds the routes.
    public func addRoutes(to router: Router<Context>) {
        router.get("health") { _, _ in
            try JSONResponse(HealthStatus(version: version))
        }
        router.get("health/ready") { _, _ in
            let readiness = await readiness()
            return try JSONResponse(readiness, status: readiness.status == "healthy" ? .ok : .serviceUnavailable)
        }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
    }

    /// Runs every check concurrently, each bounded by `checkTimeout`.
    public func readiness() async -> ReadinessStatus {
        let components = await withTaskGroup(of: (String, ComponentHealth).self) { group in
            for check in checks {
                group.addTask { (check.name, await run(check)) }
            }
            var components: [String: ComponentHealth] = [:]
            for await (name, health) in group { components[name] = health }
            return components
        }
        let healthy = components.values.allSatisfy { $0.status == "healthy" }
        return ReadinessStatus(status: healthy ? "healthy" : "unhealthy", components: components, version: version)
    }

    private func run(_ check: HealthCheck) async -> ComponentHealth {
        let start = ContinuousClock.now
        let failure: String? = await withTaskGroup(of: String?.self) { group in
            group.addTask {
                do {
                    try await check.check()
                    return nil
                } catch {
                    return "\(check.name) check failed"
                }
            }
            group.addTask {
                try? await Task.sleep(for: checkTimeout)
                return "\(check.name) check timed out"
            }
            let first = await group.next() ?? "no result"
            group.cancelAll()
            return first
        }
        let elapsed = ContinuousClock.now - start
        let milliseconds = elapsed.secondsValue * 1000
        return ComponentHealth(status: failure == nil ? "healthy" : "unhealthy",
                               latencyMS: (milliseconds * 100).rounded() / 100, error: failure)
    }
}

/// A JSON response with the platform's encoding (ISO dates).
public func JSONResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let body = try JSONEncoder.platform.encode(value)
    return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: body)))
}
