import Foundation
import Platform
import SharedModels

/// Answers whether a connection exists, so tasks never name one that does not.
protocol ConnectionDirectory: Sendable {
    func connectionExists(_ id: Int64) async throws -> Bool
}

/// Asks connections-vault (`GET /internal/connections/{id}`) with a service token.
struct RemoteConnectionDirectory: ConnectionDirectory {
    /// connections-vault (`service.url.connections_vault`).
    let connectionsVault: ServiceClient

    func connectionExists(_ id: Int64) async throws -> Bool {
        try await connectionsVault.exists("/internal/connections/\(id)", unavailable: Self.unavailable)
    }

    static let unavailable = APIError(.serviceUnavailable, code: .serviceUnavailable, message: "connections-vault cannot be asked about the connection")
}

/// Connections known in memory, for tests of the task rules.
typealias InMemoryConnectionDirectory = InMemoryDirectory<Int64>

extension InMemoryDirectory: ConnectionDirectory where ID == Int64 {
    func connectionExists(_ id: Int64) async throws -> Bool { contains(id) }
}

/// Where no service token can be made: every question is answered 503.
struct UnreachableConnectionDirectory: ConnectionDirectory {
    func connectionExists(_ id: Int64) async throws -> Bool { throw RemoteConnectionDirectory.unavailable }
}
