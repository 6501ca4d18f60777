import Foundation
import NIOPosix
import Platform
import SharedModels

/// Opens connections to customers' databases for one run: the credentials are read from connections-vault at the
/// moment of use and live only as long as the connection is being opened.
struct CustomerDatabases: Sendable {
    let catalog: any ConnectionCatalog
    /// The threads that block in libpq for customers' databases (apart from the service's own pool).
    let threadPool: NIOThreadPool

    /// A new connection to the database of connection `id`; ``RunFailure`` when it cannot be had.
    func connect(_ id: Int64) async throws -> PostgresConnection {
        let credentials = try await self.credentials(id)
        let configuration = PostgresConfiguration(
            host: credentials.host, port: credentials.port, username: credentials.username, password: credentials.password,
            database: credentials.database, sslMode: credentials.sslmode, applicationName: "data-platform-run")
        do {
            return try await PostgresConnection.connect(configuration, threadPool: threadPool)
        } catch {
            throw RunFailure(.connectorError, "connection \(id) cannot be reached: \(Self.message(for: error))")
        }
    }

    /// The credentials of connection `id`, read from the vault for this run.
    func credentials(_ id: Int64) async throws -> InternalConnectionCredentials {
        do {
            return try await catalog.credentials(id)
        } catch let refusal as CatalogRefusal {
            throw RunFailure(.connectorError, refusal.reason)
        }
    }

    /// What a user may read of an error: the server's own words for PostgreSQL's errors, never credentials.
    static func message(for error: any Error) -> String {
        if let error = error as? PostgresError { return error.serverMessage ?? error.description }
        return "\(error)"
    }
}
