@testable import ConnectionsVault
import Platform
import Testing

@Suite struct ConnectionRulesTests {
    func field(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as APIError {
            guard case .string(let field)? = error.details?["field"] else { return "?" }
            return field
        } catch {
            return "?"
        }
    }

    let good = ConnectionCredentials(host: "db.example.com", port: 5432, database: "sales", username: "etl", password: "pw", sslMode: "require")

    @Test(arguments: [
        ("Production DB", "secret/database/connections/production-db"),
        ("  Sales / EU (main)  ", "secret/database/connections/sales-eu-main"),
        ("Продажи", "secret/database/connections/connection"),
        ("a--b", "secret/database/connections/a-b"),
    ])
    func vaultPathsAreSlugsOfTheName(name: String, path: String) {
        #expect(ConnectionRules.defaultVaultPath(for: name) == path)
        #expect(field { try ConnectionRules.validate(vaultPath: path) } == nil)
    }

    @Test(arguments: ["secret", "secret//x", "secret/../x", "/secret/x", "secret/x/", "secret/a b", "secret/%2e%2e"])
    func badVaultPathsAreRefused(path: String) {
        #expect(field { try ConnectionRules.validate(vaultPath: path) } == "vault_path")
    }

    @Test func credentialFieldsAreValidated() {
        #expect(field { try ConnectionRules.validate(good) } == nil)
        var bad = good
        bad.port = 0
        #expect(field { try ConnectionRules.validate(bad) } == "port")
        bad = good
        bad.port = 65536
        #expect(field { try ConnectionRules.validate(bad) } == "port")
        bad = good
        bad.host = "db host"
        #expect(field { try ConnectionRules.validate(bad) } == "host")
        bad = good
        bad.database = ""
        #expect(field { try ConnectionRules.validate(bad) } == "database")
        bad = good
        bad.password = "a\u{0}b"
        #expect(field { try ConnectionRules.validate(bad) } == "password")
        bad = good
        bad.sslMode = "sometimes"
        #expect(field { try ConnectionRules.validate(bad) } == "sslmode")
    }

    @Test func metadataFieldsAreValidated() {
        #expect(field { try ConnectionRules.validate(environment: "staging") } == nil)
        #expect(field { try ConnectionRules.validate(environment: "prod") } == "environment")
        #expect(field { try ConnectionRules.validate(name: "  ") } == "name")
        #expect(field { try ConnectionRules.validate(tags: Array(repeating: "t", count: 21)) } == "tags")
        #expect(field { try ConnectionRules.validate(tags: [""]) } == "tags")
    }

    @Test func credentialsRoundTripThroughTheVaultEntry() {
        #expect(ConnectionCredentials(secretData: good.secretData) == good)
        var partial = good.secretData
        partial["password"] = nil
        #expect(ConnectionCredentials(secretData: partial) == nil)
    }

    @Test func connectorIDsMapToConnectionIDs() {
        #expect(ConnectorID.format(12) == "connector_12")
        #expect(ConnectorID.parse("connector_12") == 12)
        #expect(ConnectorID.parse("12") == 12)
        #expect(ConnectorID.parse("connector_x") == nil)
        #expect(ConnectorID.parse("connector_-1") == nil)
    }
}
