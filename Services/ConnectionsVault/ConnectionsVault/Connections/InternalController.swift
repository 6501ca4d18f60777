import Foundation
import Hummingbird
import Platform
import SharedModels

/// `/internal/...` of connections-vault: for other services and operators on the private network; the gateway
/// never proxies these paths. ``InternalCallerMiddleware`` has already verified the bearer token.
struct InternalController: Sendable {
    let connections: ConnectionService
    let engine: SecretsEngine
    /// Services allowed to read credentials (`connections.credentials.allowed_services`).
    let credentialReaders: Set<String>
    let audit: StreamPublisher
    let serviceName: String

    func addRoutes(to router: Router<PlatformRequestContext>) {
        // A connection's metadata, for any service of the platform (the scheduler checks that tasks name real ones).
        router.get("internal/connections/:id") { _, context in
            _ = try context.requireService(in: nil)
            let text = context.parameters.get("id") ?? ""
            guard let id = Int64(text), id > 0, let connection = try await connections.connections.find(id: id) else {
                throw APIError.notFound("connection", id: text)
            }
            return try JSONResponse(connection)
        }
        router.get("internal/connections/:id/credentials") { _, context in
            let caller = try context.requireService(in: credentialReaders)
            let credentials = try await connections.credentialsForService(id: try ConnectionsController.id(context), actor: serviceActor(caller))
            var response = try JSONResponse(credentials)
            response.headers[.cacheControl] = "no-store"
            return response
        }
        // A table's structure, for any service of the platform: the credentials are used here and never leave. An
        // inactive connection is refused, as its credentials are: pipelines are not meant to use it.
        router.get("internal/connections/:id/schema/:table") { _, context in
            let caller = try context.requireService(in: nil)
            return try JSONResponse(try await connections.table(
                id: try ConnectionsController.id(context), qualifiedName: context.parameters.decoded("table"), actor: serviceActor(caller),
                activeOnly: true))
        }
        // Only for the readers of credentials: the answer is learned from reading every active connection's.
        router.post("internal/connections/match") { request, context in
            let caller = try context.requireService(in: credentialReaders)
            let body = try await request.decodeJSON(as: InternalConnectionMatchRequest.self, context: context)
            let ids = try await connections.matching(host: body.host, port: body.port, database: body.database, actor: serviceActor(caller))
            return try JSONResponse(InternalConnectionMatchResponse(connectionIDs: ids))
        }
        router.post("internal/vault/rewrap") { _, context in
            let user = try context.requireUser(atLeast: .admin)
            guard case .builtIn(let vault) = engine else {
                throw APIError(.badRequest, code: .badRequest, message: "HashiCorp Vault keeps its own keys: rotate them in Vault")
            }
            let count = try await vault.rewrapAll()
            _ = try await audit.publish(AuditEvent(
                actor: user.userID, action: "vault.rewrap", resource: "vault", service: serviceName,
                details: ["versions": .number(Double(count)), "active_key": .string(vault.sealer.keyring.activeKeyID)]))
            return try JSONResponse(RewrapResult(rewrapped: count, activeKey: vault.sealer.keyring.activeKeyID))
        }
    }

    /// A calling service, as the audit trail of its vault reads names it.
    private func serviceActor(_ caller: String) -> SecretActor {
        SecretActor(id: "service:\(caller)", service: serviceName)
    }

    struct RewrapResult: Encodable {
        var rewrapped: Int
        var activeKey: String

        enum CodingKeys: String, CodingKey {
            case rewrapped
            case activeKey = "active_key"
        }
    }
}
