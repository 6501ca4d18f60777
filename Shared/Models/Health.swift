import Foundation

/// `GET /health`: liveness, in the shape of `002` and `004`.
public struct HealthStatus: Codable, Sendable, Equatable {
    /// Always `healthy` while the process answers.
    public var status: String
    /// The platform version.
    public var version: String
    /// When the answer was produced.
    public var timestamp: Date

    /// Creates a liveness answer.
    public init(status: String = "healthy", version: String, timestamp: Date = Date()) {
        self.status = status
        self.version = version
        self.timestamp = timestamp
    }
}

/// `GET /health/ready` and `GET /health/detailed`: the state of each dependency.
public struct ReadinessStatus: Codable, Sendable, Equatable {
    /// `healthy` when every component is, otherwise `degraded` or `unhealthy`.
    public var status: String
    /// One entry per dependency (`database`, `redis`, ...).
    public var components: [String: ComponentHealth]
    /// The platform version.
    public var version: String
    /// When the answer was produced.
    public var timestamp: Date

    /// Creates a readiness answer.
    public init(status: String, components: [String: ComponentHealth], version: String, timestamp: Date = Date()) {
        self.status = status
        self.components = components
        self.version = version
        self.timestamp = timestamp
    }
}

/// The health of one dependency.
public struct ComponentHealth: Codable, Sendable, Equatable {
    /// `healthy` or `unhealthy`.
    public var status: String
    /// How long the check took.
    public var latencyMS: Double
    /// Why the check failed, without internals.
    public var error: String?

    /// Creates a component answer.
    public init(status: String, latencyMS: Double, error: String? = nil) {
        self.status = status
        self.latencyMS = latencyMS
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case status
        case latencyMS = "latency_ms"
        case error
    }
}
