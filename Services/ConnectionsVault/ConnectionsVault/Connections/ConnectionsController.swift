import Foundation
import Hummingbird
import Platform

/// `/api/v1/connections` (`001-connections-api.md`).
struct ConnectionsController: Sendable {
    let service: ConnectionService
    let serviceName: String

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post { request, context in
            let body = try await request.decodeJSON(as: CreateConnectionRequest.self, context: context)
            let connection = try await service.create(body, actor: SecretActor(context, service: serviceName))
            return try JSONResponse(connection, status: .created)
        }
        group.get { request, _ in
            let query = request.uri.queryParameters
            var filter = ConnectionFilter()
            if let environment = query.get("environment") {
                try ConnectionRules.validate(environment: environment)
                filter.environment = environment
            }
            filter.tag = query.get("tag")
            filter.isActive = try request.booleanQuery("is_active")
            return try JSONResponse(try await service.connections.list(filter))
        }
        group.get(":id") { _, context in
            let id = try Self.id(context)
            guard let connection = try await service.connections.find(id: id) else { throw APIError.notFound("connection", id: String(id)) }
            return try JSONResponse(connection)
        }
        group.put(":id") { request, context in
            let body = try await request.decodeJSON(as: UpdateConnectionRequest.self, context: context)
            return try JSONResponse(try await service.update(id: try Self.id(context), request: body, actor: SecretActor(context, service: serviceName)))
        }
        group.delete(":id") { _, context in
            try await service.delete(id: try Self.id(context), actor: SecretActor(context, service: serviceName))
            return try JSONResponse(["message": "Connection deleted"])
        }
        group.get(":id/tables") { _, context in
            try JSONResponse(try await service.tables(id: try Self.id(context), actor: SecretActor(context, service: serviceName)))
        }
        group.get(":id/schema/:table") { _, context in
            let table = context.parameters.decoded("table")
            return try JSONResponse(try await service.table(id: try Self.id(context), qualifiedName: table, actor: SecretActor(context, service: serviceName)))
        }
        group.post(":id/test") { request, context in
            let performance = request.uri.queryParameters.get("include_performance").map { $0.lowercased() == "true" } ?? false
            return try JSONResponse(try await service.test(id: try Self.id(context), measurePerformance: performance, actor: SecretActor(context, service: serviceName)))
        }
    }

    /// The route's `:id`; 404 when it is not a positive integer.
    static func id(_ context: PlatformRequestContext) throws -> Int64 {
        let text = context.parameters.get("id") ?? ""
        guard let id = Int64(text), id > 0 else { throw APIError.notFound("connection", id: text) }
        return id
    }
}
