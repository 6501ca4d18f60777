/// The services behind the gateway and the public path prefixes each owns (DESIGN.md §1).
enum Upstream: String, Sendable, CaseIterable {
    case connectionsVault = "connections-vault"
    case scheduler
    case pipelineRunner = "pipeline-runner"
    case fileStorage = "file-storage"
    case observability

    /// The key under `service.url.` (env `SERVICE_URL_<NAME>`).
    var configName: String { rawValue.replacingOccurrences(of: "-", with: "_") }

    /// The service's default port, for a local run without configuration.
    var defaultPort: Int {
        switch self {
        case .connectionsVault: 8001
        case .scheduler: 8002
        case .pipelineRunner: 8003
        case .fileStorage: 8004
        case .observability: 8005
        }
    }

    /// Path prefixes proxied to this service.
    var publicPrefixes: [String] {
        switch self {
        case .connectionsVault: ["/api/v1/connections", "/api/v1/connectors", "/api/v1/connectors-ai"]
        case .scheduler: ["/api/v1/scheduler", "/api/v1/mvp/triggers"]
        case .pipelineRunner: ["/api/v1/pipelines", "/api/v1/projects", "/api/v1/runs", "/api/v1/mvp/datamarts",
                              "/api/v1/mvp/export", "/api/v1/admin"]
        case .fileStorage: ["/api/v1/files", "/api/v1/mvp/storage"]
        case .observability: ["/api/v1/observability"]
        }
    }
}
