import AsyncHTTPClient
import Foundation
import Platform
import SharedModels
import Synchronization

/// Answers whether a connection exists, so tasks never name one that does not.
protocol ConnectionDirectory: Sendable {
    func connectionExists(_ id: Int64) async throws -> Bool
}

/// Asks connections-vault (`GET /internal/connections/{id}`) with a service token.
struct RemoteConnectionDirectory: ConnectionDirectory {
    /// connections-vault's base URL (`service.url.connections_vault`).
    let baseURL: String
    let tokens: ServiceTokenIssuer
    let httpClient: HTTPClient

    func connectionExists(_ id: Int64) async throws -> Bool {
        var request = HTTPClientRequest(url: "\(baseURL)/internal/connections/\(id)")
        request.headers.add(name: "Authorization", value: try await tokens.authorization(for: "connections-vault"))
        let status: UInt
        do {
            status = try await httpClient.fetch(request, timeout: .seconds(5)).status.code
        } catch {
            throw Self.unavailable
        }
        switch status {
        case 200: return true
        case 404: return false
        default: throw Self.unavailable
        }
    }

    static let unavailable = APIError(.serviceUnavailable, code: .serviceUnavailable, message: "connections-vault cannot be asked about the connection")
}

/// Connections known in memory, for tests of the task rules.
final class InMemoryConnectionDirectory: ConnectionDirectory {
    private let ids: Mutex<Set<Int64>>

    init(_ ids: Set<Int64> = []) {
        self.ids = Mutex(ids)
    }

    func add(_ id: Int64) { ids.withLock { _ = $0.insert(id) } }
    func remove(_ id: Int64) { ids.withLock { _ = $0.remove(id) } }
    func connectionExists(_ id: Int64) async throws -> Bool { ids.withLock { $0.contains(id) } }
}

/// Where no service token can be made: every question is answered 503.
struct UnreachableConnectionDirectory: ConnectionDirectory {
    func connectionExists(_ id: Int64) async throws -> Bool { throw RemoteConnectionDirectory.unavailable }
}
