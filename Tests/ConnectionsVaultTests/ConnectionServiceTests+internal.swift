@testable import ConnectionsVault
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Platform
import SharedModels
import Testing

/// What other services ask of connections (`/internal/connections/...`): matching inline databases to connections,
/// and tables' structure.
extension ConnectionServiceTests {
    /// A connection to `host:port/database` (with ``request(name:vaultPath:)``'s user and password).
    func connection(_ name: String, host: String, port: Int = 5432, database: String = "sales", active: Bool = true) async throws -> Connection {
        var body = request(name: name)
        body.host = host
        body.port = port
        body.database = database
        body.isActive = active
        return try await service.create(body, actor: actor)
    }

    @Test func matchingNamesTheActiveConnectionsThatReachADatabase() async throws {
        let sales = try await connection("Sales", host: "DB.Example.com")
        let otherPort = try await connection("Sales 5433", host: "db.example.com", port: 5433)
        let otherDatabase = try await connection("Sales upper", host: "db.example.com", database: "Sales")
        _ = try await connection("Sales paused", host: "db.example.com", active: false)
        let incomplete = try await connection("Sales incomplete", host: "db.example.com")
        _ = try await secrets.write(path: incomplete.vaultPath, data: ["host": "db.example.com", "port": "5432", "database": "sales"], actor: actor)
        let vanished = try await connection("Sales vanished", host: "db.example.com")
        _ = try await secrets.delete(path: vanished.vaultPath, actor: actor)

        func matching(_ host: String, _ port: Int?, _ database: String) async throws -> [Int64] {
            try await service.matching(host: host, port: port, database: database, actor: actor)
        }
        // The host in any case, the port 5432 when not given, the database exactly; inactive connections and those
        // without complete credentials in the vault never match.
        #expect(try await matching("db.example.com", nil, "sales") == [sales.id])
        #expect(try await matching("DB.EXAMPLE.COM", 5432, "sales") == [sales.id])
        #expect(try await matching("db.example.com", 5433, "sales") == [otherPort.id])
        #expect(try await matching("db.example.com", nil, "Sales") == [otherDatabase.id])
        #expect(try await matching("db.example.com", 5434, "sales") == [])
        #expect(try await matching("db2.example.com", nil, "sales") == [])

        // Two connections to one database are both named, in id order, so that the caller sees the ambiguity.
        let twin = try await connection("Sales twin", host: "db.example.com")
        #expect(try await matching("db.example.com", nil, "sales") == [sales.id, twin.id])
        var pause = UpdateConnectionRequest()
        pause.isActive = false
        _ = try await service.update(id: sales.id, request: pause, actor: actor)
        #expect(try await matching("db.example.com", nil, "sales") == [twin.id])
    }

    @Test func matchingValidatesItsQuestion() async throws {
        func field(host: String = "db.example.com", port: Int? = nil, database: String = "sales") async -> String? {
            do {
                _ = try await service.matching(host: host, port: port, database: database, actor: actor)
                return nil
            } catch let error as APIError {
                guard error.status == .unprocessableContent, case .string(let field)? = error.details?["field"] else { return "?" }
                return field
            } catch {
                return "?"
            }
        }
        #expect(await field() == nil)
        #expect(await field(host: "") == "host")
        #expect(await field(host: String(repeating: "h", count: 256)) == "host")
        #expect(await field(host: String(repeating: "h", count: 255)) == nil)
        #expect(await field(port: 0) == "port")
        #expect(await field(port: 65536) == "port")
        #expect(await field(port: 65535) == nil)
        #expect(await field(database: "") == "database")
        #expect(await field(database: String(repeating: "d", count: 256)) == "database")
    }

    @Test func otherServicesReadTablesOnlyOfActiveConnectionsAndAnUnreachableDatabaseIsABadGateway() async throws {
        // Nothing listens on port 1.
        let unreachable = try await connection("Unreachable", host: "127.0.0.1", port: 1)
        let paused = try await connection("Paused", host: "127.0.0.1", port: 1, active: false)
        func failure(_ id: Int64, _ table: String = "public.orders", activeOnly: Bool = true) async -> APIError? {
            do {
                _ = try await service.table(id: id, qualifiedName: table, actor: actor, activeOnly: activeOnly)
                return nil
            } catch {
                return error as? APIError
            }
        }
        let down = try #require(await failure(unreachable.id))
        #expect(down.status == .badGateway && down.code == .connectorError)
        #expect(!down.message.contains("pw-1") && !down.message.contains("etl@"))
        let inactive = try #require(await failure(paused.id))
        #expect(inactive.status == .conflict && inactive.code == .connectorError)
        // Users still see an inactive connection's tables (here: its database is tried, and cannot be reached).
        #expect(await failure(paused.id, activeOnly: false)?.status == .badGateway)
        #expect(await failure(999)?.status == .notFound)
        #expect(await failure(unreachable.id, "")?.status == .unprocessableContent)
    }

    /// The service's `/internal` routes behind the middleware that verifies service tokens.
    func internalApp(key: ServiceTokenKey) async -> some ApplicationProtocol {
        let router = Router(context: PlatformRequestContext.self)
        router.middlewares.add(RequestIDMiddleware())
        router.middlewares.add(ErrorEnvelopeMiddleware())
        router.middlewares.add(InternalCallerMiddleware(
            services: await ServiceTokenVerifier(key: key, audience: "connections-vault"),
            // Only service tokens are sent here: users' keys are never fetched.
            users: AccessTokenKeys(jwksURL: "http://127.0.0.1:1/.well-known/jwks.json")))
        // Only the rewrap route looks at the engine.
        let vault = HashiCorpVaultBackend(
            settings: .init(address: "http://127.0.0.1:1/", token: VaultToken(inline: "unused"), namespace: nil, retainedVersions: 1,
                            pathPrefix: "secret/"),
            client: CurlHTTPClient(), logger: Logger(label: "test"))
        InternalController(connections: service, engine: .hashiCorp(vault), credentialReaders: ["pipeline-runner"],
                           audit: service.events, serviceName: "connections-vault").addRoutes(to: router)
        return Application(router: router)
    }

    @Test func theInternalRoutesAnswerServicesInTheEnvelope() async throws {
        let key = ServiceTokenKey.random()
        let runner = try await ServiceTokenIssuer(key: key, service: "pipeline-runner").token(for: "connections-vault")
        let scheduler = try await ServiceTokenIssuer(key: key, service: "scheduler").token(for: "connections-vault")
        let sales = try await connection("Sales", host: "DB.example.com")
        let unreachable = try await connection("Unreachable", host: "127.0.0.1", port: 1)
        let paused = try await connection("Paused", host: "127.0.0.1", port: 1, active: false)

        try await internalApp(key: key).test(.router) { client in
            func send(_ method: HTTPRequest.Method, _ path: String, _ token: String?, _ body: String? = nil) async throws -> (status: HTTPResponse.Status, body: String) {
                var headers: HTTPFields = token.map { [.authorization: "Bearer \($0)"] } ?? [:]
                if body != nil { headers[.contentType] = "application/json" }
                return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
                    (status: $0.status, body: String(buffer: $0.body))
                }
            }
            let match = "/internal/connections/match"
            let question = #"{"host": "db.example.com", "database": "sales"}"#
            let found = try await send(.post, match, runner, question)
            #expect(found.status == .ok)
            #expect(found.body == #"{"connection_ids":[\#(sales.id)]}"#)
            #expect(try JSONDecoder().decode(InternalConnectionMatchResponse.self, from: Data(found.body.utf8)).connectionIDs == [sales.id])
            let badPort = try await send(.post, match, runner, #"{"host": "db.example.com", "port": 0, "database": "sales"}"#)
            #expect(badPort.status == .unprocessableContent && badPort.body.contains(#""field":"port""#))
            let refused = [
                try await send(.post, match, scheduler, question).status,
                try await send(.post, match, nil, question).status,
                try await send(.post, match, runner, #"{"host": "db.example.com"}"#).status,
                try await send(.post, match, runner, #"{"host": "#).status,
            ]
            #expect(refused == [.forbidden, .unauthorized, .unprocessableContent, .badRequest])

            // Any service may read a table's structure; a database that cannot be reached is a 502, without credentials.
            let down = try await send(.get, "/internal/connections/\(unreachable.id)/schema/public.orders", scheduler)
            #expect(down.status == .badGateway && down.body.contains("CONNECTOR_ERROR"))
            #expect(!down.body.contains("pw-1") && !down.body.contains("etl@"))
            let statuses = [
                try await send(.get, "/internal/connections/\(paused.id)/schema/public.orders", runner).status,
                try await send(.get, "/internal/connections/999/schema/public.orders", runner).status,
                try await send(.get, "/internal/connections/x/schema/public.orders", runner).status,
                try await send(.get, "/internal/connections/\(unreachable.id)/schema/public.orders", nil).status,
            ]
            #expect(statuses == [.conflict, .notFound, .notFound, .unauthorized])
        }
    }

    @Test func aTableSchemaReadsBackAsTheSharedType() throws {
        let table = InternalTableSchema(
            schema: "public", tableName: "orders",
            columns: [.init(name: "id", type: "bigint", nullable: false, primaryKey: true, defaultValue: "nextval('orders_id_seq'::regclass)"),
                      .init(name: "note", type: "text", nullable: true, primaryKey: false)],
            rowCount: 12, indexes: [.init(name: "orders_pkey", columns: ["id"], unique: true)])
        let json = try String(decoding: JSONEncoder.platform.encode(table), as: UTF8.self)
        #expect(json.contains(#""table_name":"orders""#) && json.contains(#""primary_key":true"#) && json.contains(#""row_count":12"#))
        #expect(try JSONDecoder().decode(InternalTableSchema.self, from: Data(json.utf8)) == table)
        // A reader that is given only the columns.
        let minimal = #"{"schema":"public","table_name":"orders","columns":[{"name":"id","type":"bigint","nullable":false,"primary_key":true}]}"#
        let read = try JSONDecoder().decode(InternalTableSchema.self, from: Data(minimal.utf8))
        #expect(read.columns.map(\.name) == ["id"] && read.rowCount == nil)
    }
}
