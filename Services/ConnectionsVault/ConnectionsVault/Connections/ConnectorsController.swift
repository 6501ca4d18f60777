import Foundation
import Hummingbird
import Platform
import SharedModels

/// The Connector API of `002-platform-api.md`: the same connections seen as connectors (`connector_<id>`).
struct ConnectorsController: Sendable {
    let service: ConnectionService
    let serviceName: String

    struct CreateRequest: Decodable {
        struct Config: Decodable {
            var host: String
            var port: Int?
            var database: String
            var sslMode: String?

            enum CodingKeys: String, CodingKey {
                case host, port, database
                case sslMode = "ssl_mode"
            }
        }

        struct Credentials: Decodable {
            var username: String
            var password: String
        }

        var name: String
        var type: String
        var config: Config
        var credentials: Credentials
        var environment: String?
        var description: String?
        var tags: [String]?
    }

    struct Connector: Encodable {
        var id: String
        var name: String
        var type = "postgresql"
        var status: String
        var createdAt: Date
        var lastTested: Date?
        var testStatus: String?

        init(_ connection: Connection) {
            self.id = ConnectorID.format(connection.id)
            self.name = connection.name
            self.status = connection.isActive ? "active" : "inactive"
            self.createdAt = connection.createdAt
            self.lastTested = connection.lastTestedAt
            self.testStatus = connection.lastTestStatus
        }

        enum CodingKeys: String, CodingKey {
            case id, name, type, status
            case createdAt = "created_at"
            case lastTested = "last_tested"
            case testStatus = "test_status"
        }
    }

    struct Page: Encodable {
        var items: [Connector]
        var total: Int
    }

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.get { _, _ in
            let connectors = try await service.connections.list(ConnectionFilter()).map(Connector.init)
            return try JSONResponse(Page(items: connectors, total: connectors.count))
        }
        group.post { request, context in
            let body = try await request.decodeJSON(as: CreateRequest.self, context: context)
            guard body.type == "postgresql" else { throw APIError.validation(field: "type", reason: "only postgresql is supported") }
            let connection = try await service.create(CreateConnectionRequest(
                name: body.name, vaultPath: nil, environment: body.environment, description: body.description, tags: body.tags,
                isActive: true, host: body.config.host, port: body.config.port, database: body.config.database,
                username: body.credentials.username, password: body.credentials.password, sslmode: body.config.sslMode), actor: SecretActor(context, service: serviceName))
            return try JSONResponse(Connector(connection), status: .created)
        }
        group.post(":id/test") { _, context in
            let id = try Self.id(context)
            let result = try await service.test(id: id, measurePerformance: false, actor: SecretActor(context, service: serviceName))
            // The same result, keyed by connector id as in 002.
            guard case .object(var fields) = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder.platform.encode(result)) else {
                throw APIError(.internalServerError, code: .internalError, message: "Internal server error")
            }
            fields["connection_id"] = nil
            fields["connector_id"] = .string(ConnectorID.format(id))
            return try JSONResponse(JSONValue.object(fields))
        }
        group.get(":id/schema/:table") { _, context in
            let table = context.parameters.decoded("table")
            return try JSONResponse(try await service.table(id: try Self.id(context), qualifiedName: table, actor: SecretActor(context, service: serviceName)))
        }
    }


    private static func id(_ context: PlatformRequestContext) throws -> Int64 {
        let text = context.parameters.get("id") ?? ""
        guard let id = ConnectorID.parse(text) else { throw APIError.notFound("connector", id: text) }
        return id
    }
}

/// Connector ids: `connector_<n>` for connection `n` (a bare number is accepted too).
enum ConnectorID {
    static func format(_ id: Int64) -> String { "connector_\(id)" }

    static func parse(_ text: String) -> Int64? {
        let digits = text.hasPrefix("connector_") ? text.dropFirst(10) : Substring(text)
        guard let id = Int64(digits), id > 0 else { return nil }
        return id
    }
}
