@testable import ConnectionsVault
import Foundation
import Platform
import PlatformTesting
import SharedModels
import Testing

extension Integration {
    /// Connections through the gateway. A database of its own, owned by a password-protected role of its own,
    /// plays the customer's database.
    @Suite struct ConnectionsTests {
        /// The customer's database, made once per test: a role with a password and a database it owns.
        static func customerDatabase() async throws -> PostgresConfiguration {
            let name = TestEnvironment.uniqueName("customer")
            let password = "Customer-" + TestEnvironment.uniqueName("pw")
            let admin = PostgresClient(configuration: try TestEnvironment.superuserPostgres(), maxConnections: 1, logger: TestEnvironment.logger)
            try await withServices([admin]) {
                let role = try PostgresIdentifier(name)
                // CREATE ROLE takes no parameters: the password is a literal made of letters, digits, '-' and '_'.
                try await admin.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(role.quoted) LOGIN PASSWORD '\(password)'"))
                try await admin.query("CREATE DATABASE \(role) OWNER \(role)")
            }
            var customer = try TestEnvironment.postgres()
            customer.username = name
            customer.password = password
            customer.database = name
            return customer
        }

        func credentials(_ database: PostgresConfiguration, password: String? = nil, port: Int? = nil) -> [String: Any] {
            [
                "host": database.host, "port": port ?? database.port, "database": database.database,
                "username": database.username, "password": password ?? (database.password ?? ""), "sslmode": "disable",
            ]
        }

        /// After connections were created and changed with known passwords, and PostgreSQL has written
        /// everything to disk, neither its data directory (tables, WAL) nor its log nor the audit stream holds
        /// a password anywhere.
        @Test func passwordsReachNeitherDiskNorLogNorAudit() async throws {
            let dataDirectory = try TestEnvironment.require("PLATFORM_TEST_PG_DATA")
            let serverLog = try TestEnvironment.require("PLATFORM_TEST_PG_LOG")
            let canaries = ["Canary-" + TestEnvironment.uniqueName("first"), "Canary-" + TestEnvironment.uniqueName("second")]
            try await GatewayStack.run { stack in
                let engineer = try await stack.user(.engineer)
                var body = credentials(try await Self.customerDatabase(), password: canaries[0])
                body["name"] = "Canary " + TestEnvironment.uniqueName("c")
                let created = try await stack.send(.POST, "/api/v1/connections/", token: engineer.access, json: body)
                let id = try #require(created.json["id"] as? Int)
                #expect(try await stack.send(.PUT, "/api/v1/connections/\(id)", token: engineer.access, json: ["password": canaries[1]]).status == 200)
                // Read back through a test (it fails: the canary is not the role's password).
                #expect(try await stack.send(.POST, "/api/v1/connections/\(id)/test", token: engineer.access).json["test_status"] as? String == "failed")
            }
            let postgres = PostgresClient(configuration: try TestEnvironment.superuserPostgres(), maxConnections: 1, logger: TestEnvironment.logger)
            try await withServices([postgres]) {
                try await postgres.query("CHECKPOINT")
            }
            var scanned = 0
            let files = FileManager.default.enumerator(atPath: dataDirectory)?.compactMap { $0 as? String } ?? []
            for relative in files + [serverLog] {
                let path = relative.hasPrefix("/") ? relative : dataDirectory + "/" + relative
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                      let contents = FileManager.default.contents(atPath: path) else { continue }
                scanned += contents.count
                for canary in canaries {
                    #expect(contents.range(of: Data(canary.utf8)) == nil, "\(canary) found in \(path)")
                }
            }
            #expect(scanned > 1_000_000, "the scan read only \(scanned) bytes")

            let text = try await Self.recentAuditRecords()
            #expect(text.contains("secret.write"))
            for canary in canaries { #expect(!text.contains(canary)) }
        }

        /// The last thousand entries of `platform:audit`, as text.
        static func recentAuditRecords() async throws -> String {
            let redis = RedisClient(configuration: try TestEnvironment.redis(), logger: TestEnvironment.logger)
            return try await withServices([redis]) {
                let audit = try await redis.execute(["XREVRANGE", "platform:audit", "+", "-", "COUNT", "1000"])
                func strings(_ reply: RedisReply) -> [String] {
                    if let elements = reply.array { return elements.flatMap(strings) }
                    return reply.string.map { [$0] } ?? []
                }
                return strings(audit).joined(separator: "\n")
            }
        }

        @Test func theConnectorAPIIsTheSameResource() async throws {
            try await GatewayStack.run { stack in
                let engineer = try await stack.user(.engineer)
                let database = try await Self.customerDatabase()
                let created = try await stack.send(.POST, "/api/v1/connectors", token: engineer.access, json: [
                    "name": "Connector " + TestEnvironment.uniqueName("c"), "type": "postgresql",
                    "config": ["host": database.host, "port": database.port, "database": database.database, "ssl_mode": "disable"],
                    "credentials": ["username": database.username, "password": database.password ?? ""],
                ])
                #expect(created.status == 201)
                let id = try #require(created.json["id"] as? String)
                #expect(id.hasPrefix("connector_"))
                #expect(created.json["status"] as? String == "active")
                #expect(created.json["type"] as? String == "postgresql")
                let wrongType = try await stack.send(.POST, "/api/v1/connectors", token: engineer.access, json: [
                    "name": "x", "type": "mysql", "config": ["host": "h", "database": "d"], "credentials": ["username": "u", "password": "p"],
                ])
                #expect(wrongType.status == 422)

                let tested = try await stack.send(.POST, "/api/v1/connectors/\(id)/test", token: engineer.access)
                #expect(tested.json["connector_id"] as? String == id)
                #expect(tested.json["test_status"] as? String == "success")
                #expect(tested.json["connection_id"] == nil)

                let listed = try await stack.send(.GET, "/api/v1/connectors", token: engineer.access)
                let items = try #require(listed.json["items"] as? [[String: Any]])
                let mine = try #require(items.first { $0["id"] as? String == id })
                #expect(mine["test_status"] as? String == "success")
                #expect(mine["last_tested"] is String)
                #expect((listed.json["total"] as? Int ?? 0) >= 1)

                let catalog = try await stack.send(.GET, "/api/v1/connectors/\(id)/schema/pg_catalog.pg_namespace", token: engineer.access)
                #expect(catalog.json["table_name"] as? String == "pg_namespace")
                let columns = (catalog.json["columns"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                #expect(columns.contains("nspname"))
            }
        }

        /// Another service reads a connection's credentials from connections-vault directly, with a service token;
        /// nobody else can, and the gateway does not route there.
        @Test func servicesReadCredentialsThroughTheInternalRoute() async throws {
            try await GatewayStack.run { stack in
                let engineer = try await stack.user(.engineer)
                let customer = try await Self.customerDatabase()
                var body = credentials(customer)
                body["name"] = "Internal " + TestEnvironment.uniqueName("c")
                let created = try await stack.send(.POST, "/api/v1/connections/", token: engineer.access, json: body)
                let id = try #require(created.json["id"] as? Int)
                let vault = try #require(stack.services[ConnectionsVaultService.name])
                let path = "/internal/connections/\(id)/credentials"
                let runner = try await stack.serviceToken(from: "pipeline-runner", to: ConnectionsVaultService.name)

                let reply = try await stack.send(.GET, path, token: runner, base: vault)
                #expect(reply.status == 200)
                #expect(reply.header("Cache-Control") == "no-store")
                let read = try JSONDecoder().decode(InternalConnectionCredentials.self, from: reply.body)
                #expect(read.connectionID == Int64(id))
                #expect(read.password == customer.password && read.username == customer.username && read.database == customer.database)
                #expect(read.secretVersion == 1)
                // They are the working credentials of the customer's database.
                let reached = PostgresClient(
                    configuration: PostgresConfiguration(host: read.host, port: read.port, username: read.username, password: read.password,
                                                         database: read.database, sslMode: read.sslmode),
                    maxConnections: 1, logger: TestEnvironment.logger)
                try await withServices([reached]) {
                    let user = try await reached.query("SELECT current_user AS name").first?.decode("name", as: String.self)
                    #expect(user == customer.username)
                }

                let scheduler = try await stack.serviceToken(from: "scheduler", to: ConnectionsVaultService.name)
                let elsewhere = try await stack.serviceToken(from: "pipeline-runner", to: "file-storage")
                let refusals = [
                    try await stack.send(.GET, path, token: scheduler, base: vault).status,
                    try await stack.send(.GET, path, token: engineer.access, base: vault).status,
                    try await stack.send(.GET, path, token: elsewhere, base: vault).status,
                    try await stack.send(.GET, path, base: vault).status,
                    try await stack.send(.GET, "/internal/connections/999999999/credentials", token: runner, base: vault).status,
                    try await stack.send(.GET, path, token: runner).status,
                ]
                #expect(refusals == [403, 403, 401, 401, 404, 404])

                // An inactive connection's credentials are not handed out.
                #expect(try await stack.send(.PUT, "/api/v1/connections/\(id)", token: engineer.access, json: ["is_active": false]).status == 200)
                let inactive = try await stack.send(.GET, path, token: runner, base: vault)
                #expect(inactive.status == 409)

                // The read is in the audit trail under the calling service, without the password.
                let audit = try await Self.recentAuditRecords()
                let reads = audit.split(separator: "\n").filter { $0.contains(#""resource":"\#(read.vaultPath)""#) && $0.contains("secret.read") }
                #expect(reads.contains { $0.contains(#""actor":"service:pipeline-runner""#) })
                #expect(!audit.contains(try #require(customer.password)))
                #expect(try await stack.send(.DELETE, "/api/v1/connections/\(id)", token: engineer.access).status == 200)
            }
        }

        /// `POST /internal/vault/rewrap` is for admins only, and moves data keys still wrapped by an old master key to
        /// the active one while the service runs.
        @Test func theRewrapRouteIsForAdmins() async throws {
            let runKeys = try TestEnvironment.require("VAULT_MASTER_KEYS")
            let runKeyID = String(runKeys.split(separator: ":")[0])
            let oldKey = Integration.VaultTests.keyText("retiring")
            let path = "secret/test/" + TestEnvironment.uniqueName("route")
            let postgres = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 2, logger: TestEnvironment.logger)
            let versions = try PostgresIdentifier("vault_secret_versions", schema: ConnectionsVaultService.schema)
            func keyID() async throws -> String? {
                try await postgres.query("SELECT key_id FROM \(versions) WHERE path = \(path)").first?.decode("key_id", as: String.self)
            }
            try await withServices([postgres]) {
                let underOldKey = try BuiltInSecretBackend(
                    postgres: postgres, schema: ConnectionsVaultService.schema,
                    sealer: SecretSealer(keyring: try MasterKeyring(configuration: oldKey, active: nil)), retainedVersions: 3)
                _ = try await underOldKey.write(path: path, data: ["password": "kept"], actor: actor)
                #expect(try await keyID() == "retiring")

                try await GatewayStack.run(serviceSettings: ["VAULT_MASTER_KEYS": "\(runKeys),\(oldKey)", "VAULT_ACTIVE_KEY": runKeyID]) { stack in
                    let vault = try #require(stack.services[ConnectionsVaultService.name])
                    let admin = try await stack.user(.admin)
                    let engineer = try await stack.user(.engineer)
                    let runner = try await stack.serviceToken(from: "pipeline-runner", to: ConnectionsVaultService.name)
                    let refused = [
                        try await stack.send(.POST, "/internal/vault/rewrap", token: engineer.access, base: vault).status,
                        try await stack.send(.POST, "/internal/vault/rewrap", token: runner, base: vault).status,
                        try await stack.send(.POST, "/internal/vault/rewrap", token: admin.access).status,
                    ]
                    #expect(refused == [403, 403, 404])
                    #expect(try await keyID() == "retiring")
                    let done = try await stack.send(.POST, "/internal/vault/rewrap", token: admin.access, base: vault)
                    #expect(done.status == 200)
                    #expect(done.json["active_key"] as? String == runKeyID)
                    #expect((done.json["rewrapped"] as? Int ?? 0) >= 1)
                }
                // The old key can go: the secret opens with the run's key alone.
                #expect(try await keyID() == runKeyID)
                let withRunKey = try BuiltInSecretBackend(
                    postgres: postgres, schema: ConnectionsVaultService.schema,
                    sealer: SecretSealer(keyring: try MasterKeyring(configuration: runKeys, active: nil)), retainedVersions: 3)
                #expect(try await withRunKey.read(path: path, version: nil, actor: actor)?.data["password"] == "kept")
                _ = try await withRunKey.delete(path: path, actor: actor)
            }
        }

        let actor = SecretActor(id: "user_1", service: "connections-vault")

        @Test func createTestUpdateAndDeleteThroughTheGateway() async throws {
            try await GatewayStack.run { stack in
                let engineer = try await stack.user(.engineer)
                let customer = try await Self.customerDatabase()
                let name = "Sales DB " + TestEnvironment.uniqueName("c")
                var body = credentials(customer)
                body.merge(["name": name, "environment": "staging", "description": "sales", "tags": ["sales", "critical"]]) { _, new in new }
                let created = try await stack.send(.POST, "/api/v1/connections/", token: engineer.access, json: body)
                #expect(created.status == 201)
                let id = try #require(created.json["id"] as? Int)
                let vaultPath = try #require(created.json["vault_path"] as? String)
                #expect(vaultPath.hasPrefix("secret/database/connections/sales-db-"))
                #expect(created.json["tags"] as? [String] == ["sales", "critical"])
                #expect(created.json["is_active"] as? Bool == true)
                let password = try #require(body["password"] as? String)
                for text in [String(decoding: created.body, as: UTF8.self)] {
                    #expect(!text.contains(password) && !text.contains("\"host\"") && !text.contains("username"))
                }

                // The same vault path again is a conflict; bad fields are 422 naming the field.
                var duplicate = body
                duplicate["vault_path"] = vaultPath
                #expect(try await stack.send(.POST, "/api/v1/connections/", token: engineer.access, json: duplicate).status == 409)
                for (field, value) in [("port", 70000 as Any), ("environment", "prod" as Any), ("vault_path", "../etc" as Any)] {
                    var bad = body
                    bad[field] = value
                    bad["vault_path"] = field == "vault_path" ? value : "secret/test/" + TestEnvironment.uniqueName("v")
                    let reply = try await stack.send(.POST, "/api/v1/connections/", token: engineer.access, json: bad)
                    #expect(reply.status == 422, "\(field)")
                    #expect(((reply.json["error"] as? [String: Any])?["details"] as? [String: Any])?["field"] as? String == field)
                }
                var missing = body
                missing["password"] = nil
                #expect(try await stack.send(.POST, "/api/v1/connections/", token: engineer.access, json: missing).status == 422)

                let analyst = try await stack.user(.analyst)
                let listed = try await stack.send(.GET, "/api/v1/connections/?environment=staging&tag=sales", token: analyst.access)
                #expect(listed.status == 200)
                let items = try #require(try JSONSerialization.jsonObject(with: listed.body) as? [[String: Any]])
                #expect(items.contains { $0["id"] as? Int == id })
                #expect(try await stack.send(.GET, "/api/v1/connections/\(id)", token: analyst.access).json["name"] as? String == name)
                #expect(try await stack.send(.GET, "/api/v1/connections/999999999", token: analyst.access).errorCode == "RESOURCE_NOT_FOUND")

                // A good connection; with performance figures on request.
                let good = try await stack.send(.POST, "/api/v1/connections/\(id)/test?include_performance=true", token: analyst.access)
                #expect(good.json["test_status"] as? String == "success")
                let details = try #require(good.json["details"] as? [String: Bool])
                #expect(details == ["connection_established": true, "authentication_successful": true, "query_execution_successful": true])
                #expect((good.json["performance"] as? [String: Any])?["round_trips"] as? Int == 20)

                // Changing only the host keeps the password working.
                let hostOnly = try await stack.send(.PUT, "/api/v1/connections/\(id)", token: engineer.access,
                                                    json: ["host": customer.host, "description": "moved"])
                #expect(hostOnly.status == 200)
                #expect(hostOnly.json["description"] as? String == "moved")
                #expect(try await stack.send(.POST, "/api/v1/connections/\(id)/test", token: analyst.access).json["test_status"] as? String == "success")

                // The customer's schema: a table with a composite primary key and indexes.
                let customerSchema = TestEnvironment.uniqueName("cust")
                let setup = PostgresClient(configuration: customer, maxConnections: 1, logger: TestEnvironment.logger)
                try await withServices([setup]) {
                    let schemaName = try PostgresIdentifier(customerSchema)
                    let table = try PostgresIdentifier("order_lines", schema: customerSchema)
                    try await setup.query("CREATE SCHEMA \(schemaName)")
                    try await setup.query("""
                        CREATE TABLE \(table) (order_id bigint, line_no int, sku text NOT NULL, amount numeric(10,2) DEFAULT 0,
                                              PRIMARY KEY (order_id, line_no))
                        """)
                    try await setup.query("CREATE UNIQUE INDEX order_lines_sku_key ON \(table) (sku, order_id)")
                    try await setup.query("INSERT INTO \(table) SELECT g, 1, 'sku' || g FROM generate_series(1, 25) g")
                }
                let schema = try await stack.send(.GET, "/api/v1/connections/\(id)/schema/\(customerSchema).order_lines", token: analyst.access)
                #expect(schema.status == 200)
                #expect(schema.json["table_name"] as? String == "order_lines")
                #expect(schema.json["row_count"] as? Int == 25)
                let columns = try #require(schema.json["columns"] as? [[String: Any]])
                #expect(columns.map { $0["name"] as? String } == ["order_id", "line_no", "sku", "amount"])
                #expect(columns.map { $0["primary_key"] as? Bool } == [true, true, false, false])
                #expect(columns[2]["nullable"] as? Bool == false)
                #expect(columns[3]["type"] as? String == "numeric(10,2)")
                let indexes = try #require(schema.json["indexes"] as? [[String: Any]])
                #expect(indexes.contains { $0["name"] as? String == "order_lines_sku_key" && $0["columns"] as? [String] == ["sku", "order_id"] && $0["unique"] as? Bool == true })
                #expect(indexes.contains { $0["columns"] as? [String] == ["order_id", "line_no"] })
                #expect(try await stack.send(.GET, "/api/v1/connections/\(id)/schema/\(customerSchema).missing", token: analyst.access).status == 404)
                let tables = try await stack.send(.GET, "/api/v1/connections/\(id)/tables", token: analyst.access)
                let listedTables = try #require(try JSONSerialization.jsonObject(with: tables.body) as? [[String: Any]])
                #expect(listedTables.contains { $0["schema"] as? String == customerSchema && $0["name"] as? String == "order_lines" })

                // A wrong password and an unreachable server fail differently, and say nothing secret.
                _ = try await stack.send(.PUT, "/api/v1/connections/\(id)", token: engineer.access, json: ["password": "wrong-\(password)"])
                let wrong = try await stack.send(.POST, "/api/v1/connections/\(id)/test", token: analyst.access)
                #expect(wrong.json["test_status"] as? String == "failed")
                #expect((wrong.json["error"] as? [String: Any])?["code"] as? String == "AUTHENTICATION_FAILED")
                #expect(!String(decoding: wrong.body, as: UTF8.self).contains(password))
                _ = try await stack.send(.PUT, "/api/v1/connections/\(id)", token: engineer.access,
                                         json: ["password": password, "port": try TestEnvironment.freePort()])
                let unreachable = try await stack.send(.POST, "/api/v1/connections/\(id)/test", token: analyst.access)
                #expect((unreachable.json["error"] as? [String: Any])?["code"] as? String == "CONNECTION_FAILED")
                #expect((unreachable.json["details"] as? [String: Bool])?["connection_established"] == false)

                // Nothing readable is stored in the connections table or the vault tables.
                let postgres = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 1, logger: TestEnvironment.logger)
                try await withServices([postgres]) {
                    let dump = try await postgres.query("""
                        SELECT (SELECT string_agg(c::text, ' ') FROM connections.connections c) || ' ' ||
                               (SELECT string_agg(encode(wrapped_key, 'escape') || encode(ciphertext, 'escape'), ' ')
                                FROM connections.vault_secret_versions) AS everything
                        """).first!.decode("everything", as: String.self)
                    #expect(!dump.contains(password))
                }

                #expect(try await stack.send(.DELETE, "/api/v1/connections/\(id)", token: analyst.access).status == 403)
                let deleted = try await stack.send(.DELETE, "/api/v1/connections/\(id)", token: engineer.access)
                #expect(deleted.status == 200)
                #expect(deleted.json["message"] is String)
                #expect(try await stack.send(.GET, "/api/v1/connections/\(id)", token: analyst.access).status == 404)
                let again = PostgresClient(configuration: try TestEnvironment.postgres(), maxConnections: 1, logger: TestEnvironment.logger)
                try await withServices([again]) {
                    let left = try await again.query("SELECT count(*) AS n FROM connections.vault_secret_versions WHERE path = \(vaultPath)")
                    #expect(try left.first!.decode("n", as: Int.self) == 0)
                }
            }
        }
    }
}
