import Foundation
import Platform
import Testing

@Suite struct ServiceSettingsTests {
    private func settings(arguments: [String] = [], environment: [String: String] = [:], file: String? = nil) async throws -> ServiceSettings {
        let reader = try await ServiceSettings.makeReader(arguments: ["service"] + arguments, environment: environment, environmentFile: file)
        return ServiceSettings(reader: reader, serviceName: "scheduler", defaultPort: 8002)
    }

    @Test func defaults() async throws {
        let settings = try await settings()
        #expect(settings.httpHost == "127.0.0.1")
        #expect(settings.httpPort == 8002)
        #expect(settings.postgres.port == 5432)
        #expect(settings.postgres.password == nil)
        #expect(settings.postgresPoolSize == 8)
        #expect(settings.postgres.liveness == .init(idleSeconds: 30, intervalSeconds: 10, count: 3, userTimeoutMilliseconds: 60_000))
        #expect(settings.redis.port == 6379)
        #expect(settings.logLevel == .info)
        #expect(settings.instanceID.hasPrefix("scheduler-"))
    }

    @Test func dottedKeysMapToEnvironmentVariables() async throws {
        let settings = try await settings(environment: [
            "HTTP_PORT": "9100", "POSTGRES_HOST": "db.internal", "POSTGRES_PORT": "6543", "POSTGRES_PASSWORD": "pw",
            "POSTGRES_POOL_SIZE": "3", "REDIS_PORT": "6380", "LOG_LEVEL": "DEBUG",
        ])
        #expect(settings.httpPort == 9100)
        #expect(settings.postgres.host == "db.internal")
        #expect(settings.postgres.port == 6543)
        #expect(settings.postgres.password == "pw")
        #expect(settings.postgresPoolSize == 3)
        #expect(settings.redis.port == 6380)
        #expect(settings.logLevel == .debug)
    }

    @Test func commandLineWinsOverEnvironmentWhichWinsOverTheFile() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UUID()).env").path
        try "HTTP_PORT=7000\nPOSTGRES_HOST=from-file\nREDIS_HOST=file-redis\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let settings = try await settings(
            arguments: ["--http-port", "7100"], environment: ["HTTP_PORT": "7200", "POSTGRES_HOST": "from-env"], file: file)
        #expect(settings.httpPort == 7100)
        #expect(settings.postgres.host == "from-env")
        #expect(settings.redis.host == "file-redis")
    }

    @Test func aMissingEnvFileIsFine() async throws {
        let settings = try await settings(file: "/nonexistent/.env")
        #expect(settings.httpPort == 8002)
    }

    @Test func descriptionsLeaveSecretsOut() async throws {
        let settings = try await settings(environment: ["POSTGRES_PASSWORD": "s3cr3t-pw", "REDIS_PASSWORD": "r3dis-pw"])
        #expect(!settings.postgres.description.contains("s3cr3t-pw"))
        #expect(!settings.redis.description.contains("r3dis-pw"))
    }

    @Test func aSecretIsReadInlineOrFromItsFile() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try "from-file\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try await ServiceSettings.makeReader(arguments: [], environment: ["VAULT_TOKEN_FILE": file.path], environmentFile: nil)
        #expect(try fromFile.secret(forKey: "vault.token") == "from-file")
        let inline = try await ServiceSettings.makeReader(
            arguments: [], environment: ["VAULT_TOKEN": " inline ", "VAULT_TOKEN_FILE": file.path], environmentFile: nil)
        #expect(try inline.secret(forKey: "vault.token") == "inline")
        let neither = try await ServiceSettings.makeReader(arguments: [], environment: [:], environmentFile: nil)
        #expect(try neither.secret(forKey: "vault.token") == nil)
    }
}
