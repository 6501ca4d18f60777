import AsyncHTTPClient
import ServiceLifecycle

/// Keeps an `HTTPClient` for the application's lifetime and shuts it down when the application stops.
public struct HTTPClientService: Service {
    /// The client.
    public let client: HTTPClient

    /// Wraps a client.
    public init(client: HTTPClient) {
        self.client = client
    }

    public func run() async throws {
        // Cancellation and graceful shutdown both end the wait; the client is shut down either way.
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
