import Foundation
import Testing
import Yams

/// The compose file cannot be run here (no Docker engine), so its structure is checked instead.
@Suite struct ComposeFileTests {
    static let services = ["auth-gateway", "connections-vault", "scheduler", "pipeline-runner", "file-storage", "observability"]

    static var repositoryRoot: URL {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return url
    }

    func compose() throws -> [String: Any] {
        let text = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any])
    }

    @Test func everyServiceIsBuiltFromTheSharedDockerfileAndHealthChecked() throws {
        let services = try #require(try compose()["services"] as? [String: Any])
        for name in Self.services {
            let service = try #require(services[name] as? [String: Any], "missing \(name)")
            let build = try #require(service["build"] as? [String: Any], "\(name) has no build")
            #expect(build["dockerfile"] as? String == "deploy/Dockerfile")
            #expect((build["args"] as? [String: Any])?["SERVICE"] as? String == name)
            #expect(service["healthcheck"] != nil, "\(name) has no healthcheck")
            let environment = try #require(service["environment"] as? [String: Any], "\(name) has no environment map")
            for key in ["HTTP_PORT", "POSTGRES_HOST", "REDIS_HOST"] {
                #expect(environment[key] != nil, "\(name) lacks \(key)")
            }
        }
        let dockerfile = Self.repositoryRoot.appendingPathComponent("deploy/Dockerfile").path
        #expect(FileManager.default.fileExists(atPath: dockerfile))
    }

    @Test func onlyTheGatewayPublishesAPort() throws {
        let services = try #require(try compose()["services"] as? [String: Any])
        let publishing = services.compactMap { name, value in (value as? [String: Any])?["ports"] != nil ? name : nil }
        #expect(publishing == ["auth-gateway"])
    }

    @Test func dependenciesNameExistingServices() throws {
        let services = try #require(try compose()["services"] as? [String: Any])
        for (name, value) in services {
            guard let dependsOn = (value as? [String: Any])?["depends_on"] else { continue }
            let names = (dependsOn as? [String: Any]).map { Array($0.keys) } ?? (dependsOn as? [String]) ?? []
            for dependency in names {
                #expect(services[dependency] != nil, "\(name) depends on unknown \(dependency)")
            }
        }
        #expect(services["postgres"] != nil)
        #expect(services["redis"] != nil)
    }
}
