@testable import ConnectionsVault
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import HummingbirdTesting
import NIOCore
import Platform
import SharedModels
import Synchronization
import Testing

/// Serves recorded HTTP exchanges in order and notes every request that is not the one recorded next.
final class ExchangeReplay: HTTPResponder, Sendable {
    typealias Context = BasicRequestContext

    struct Recording: Decodable, Sendable {
        var headers: [String: String]
        var exchanges: [Exchange]
    }

    struct Exchange: Decodable, Sendable {
        struct Request: Decodable, Sendable {
            var method: String
            var path: String
            /// Headers of this request that differ from the recording's.
            var headers: [String: String]?
            var body: JSONValue?
        }
        struct Response: Decodable, Sendable {
            var status: Int
            var body: JSONValue?
        }
        var request: Request
        var response: Response
    }

    private let recording: Recording
    private let state = Mutex<(next: Int, mismatches: [String])>((0, []))

    init(fixture: String) throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(fixture)", withExtension: "json"))
        recording = try JSONDecoder().decode(Recording.self, from: Data(contentsOf: url))
    }

    /// Requests that differed from the recording, and whether every recorded exchange was used.
    var mismatches: [String] { state.withLock { $0.mismatches } }
    var isFinished: Bool { state.withLock { $0.next == recording.exchanges.count } }

    func respond(to request: Request, context: Context) async throws -> Response {
        let body = try await request.body.collect(upTo: 1 << 20)
        let (index, _) = state.withLock { state in
            defer { state.next += 1 }
            return (state.next, ())
        }
        guard index < recording.exchanges.count else { return failure("request \(index) \(request.method) \(request.uri) is beyond the recording") }
        let exchange = recording.exchanges[index]
        var problems: [String] = []
        if request.method.rawValue != exchange.request.method || request.uri.description != exchange.request.path {
            problems.append("expected \(exchange.request.method) \(exchange.request.path), got \(request.method) \(request.uri)")
        }
        let expectedHeaders = recording.headers.merging(exchange.request.headers ?? [:]) { _, own in own }
        for (name, value) in expectedHeaders where request.headers[HTTPField.Name(name)!] != value {
            problems.append("header \(name) is \(request.headers[HTTPField.Name(name)!] ?? "absent")")
        }
        let sent = body.readableBytes == 0 ? nil : try? JSONDecoder().decode(JSONValue.self, from: body)
        if sent != exchange.request.body {
            problems.append("body differs: \(String(buffer: body))")
        }
        guard problems.isEmpty else { return failure("exchange \(index): " + problems.joined(separator: "; ")) }
        var headers = HTTPFields()
        if exchange.response.body != nil { headers[.contentType] = "application/json" }
        return Response(status: .init(code: exchange.response.status), headers: headers,
                        body: .init(byteBuffer: ByteBuffer(data: try exchange.response.body.map { try JSONEncoder().encode($0) } ?? Data())))
    }

    private func failure(_ message: String) -> Response {
        state.withLock { $0.mismatches.append(message) }
        return Response(status: .init(code: 599), body: .init(byteBuffer: ByteBuffer(string: #"{"errors":["not recorded"]}"#)))
    }
}

/// The HashiCorp Vault backend against the recorded KV v2 exchanges: every request it makes must be the recorded
/// one (method, path, token and namespace headers, body), and it must read every recorded answer right.
@Suite struct HashiCorpVaultBackendTests {
    let actor = SecretActor(id: "user_1", service: "connections-vault")
    let token = "hvs.CAESIPlatformTestToken"

    func backend(port: Int?, token: VaultToken, prefix: String = "secret/") throws -> HashiCorpVaultBackend {
        HashiCorpVaultBackend(
            settings: .init(address: "http://127.0.0.1:\(try #require(port))/", token: token, namespace: "team-a", retainedVersions: 3, pathPrefix: prefix),
            client: CurlHTTPClient(), logger: Logger(label: "test"))
    }

    @Test func theKV2ConversationIsTheRecordedOne() async throws {
        let replay = try ExchangeReplay(fixture: "hashicorp-vault-kv2")
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("vault-token-\(UUID().uuidString)")
        try token.write(to: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tokenFile) }
        let app = Application(responder: replay, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let backend = try backend(port: client.port, token: try VaultToken(file: tokenFile.path))
            let path = "secret/database/connections/sales"
            var credentials = ["host": "db-1.internal", "port": "5432", "database": "sales", "username": "etl", "password": "first-Pa55", "sslmode": "require"]
            let first = try await backend.write(path: path, data: credentials, actor: actor)
            credentials["host"] = "db-2.internal"
            let second = try await backend.write(path: path, data: credentials, actor: actor)
            credentials["password"] = "second-Pa55"
            let third = try await backend.write(path: path, data: credentials, actor: actor)
            #expect(first == 1 && second == 2 && third == 3)

            let latest = try #require(try await backend.read(path: path, version: nil, actor: actor))
            #expect(latest.version == 3)
            #expect(latest.data == credentials)
            #expect(latest.createdAt == Date(timeIntervalSince1970: 1_795_429_050))
            let older = try #require(try await backend.read(path: path, version: 2, actor: actor))
            #expect(older.data["password"] == "first-Pa55")
            #expect(abs(older.createdAt.timeIntervalSince1970 - 1_795_428_960.5) < 0.001)
            let deleted = try await backend.read(path: path, version: 1, actor: actor)
            #expect(deleted == nil)
            let neverWritten = try await backend.read(path: path, version: 9, actor: actor)
            #expect(neverWritten == nil)
            // Deleted and destroyed versions are not listed.
            let versions = try await backend.versions(path: path)
            #expect(versions == [3])

            let removed = try await backend.delete(path: path, actor: actor)
            #expect(removed)
            let removedAgain = try await backend.delete(path: path, actor: actor)
            #expect(!removedAgain)
            let gone = try await backend.read(path: path, version: nil, actor: actor)
            #expect(gone == nil)
            let noVersions = try await backend.versions(path: path)
            #expect(noVersions.isEmpty)

            // Refusals are an unavailable vault (503 to clients), with Vault's reason for the log.
            await #expect { try await backend.read(path: "secret/database/restricted/ledger", version: nil, actor: actor) } throws: { error in
                guard case VaultError.unavailable(let reason) = error else { return false }
                return reason.contains("403") && reason.contains("permission denied")
            }
            await #expect { try await backend.write(path: path, data: ["password": "third-Pa55"], actor: actor) } throws: { error in
                guard case VaultError.unavailable(let reason) = error else { return false }
                return reason.contains("Vault is sealed")
            }
            let wrongMount = try self.backend(port: client.port, token: VaultToken(inline: token), prefix: "kv/")
            await #expect { try await wrongMount.read(path: "kv/database/connections/sales", version: nil, actor: actor) } throws: { error in
                guard case VaultError.unavailable(let reason) = error else { return false }
                return reason.contains("no handler for route")
            }
            // The agent renewed the token: the refused request is made once more with the file's new token.
            try "hvs.CAESIRenewedTestToken\n".write(to: tokenFile, atomically: true, encoding: .utf8)
            let renewed = try await backend.read(path: "secret/database/connections/orders", version: nil, actor: actor)
            #expect(renewed?.data["password"] == "orders-Pa55")
        }
        #expect(replay.mismatches == [])
        #expect(replay.isFinished)
    }

    @Test func pathsOutsideThePrefixAreRefusedBeforeAnyRequest() async throws {
        // Port 9 (discard) would fail the transfer: the refusal must come first.
        let backend = try backend(port: 9, token: VaultToken(inline: token), prefix: "secret/database/")
        for path in ["secret/payments/stripe", "kv/database/x", "secret/databases/x"] {
            await #expect { try await backend.write(path: path, data: ["password": "x"], actor: actor) } throws: { error in
                guard let vault = error as? VaultError, case .pathNotAllowed = vault else { return false }
                return vault.apiError.status == .unprocessableContent
            }
        }
    }

    @Test func anUnreachableVaultIsUnavailableNotAnInternalError() async throws {
        let backend = try backend(port: 9, token: VaultToken(inline: token))
        await #expect { try await backend.read(path: "secret/x/y", version: nil, actor: actor) } throws: { error in
            guard let vault = error as? VaultError, case .unavailable = vault else { return false }
            return vault.apiError.status == .serviceUnavailable
        }
    }

    @Test func vaultTimesWithNanosecondsAreRead() {
        #expect(VaultTime.parse("2026-11-23T10:15:04.123456789Z").map { abs($0.timeIntervalSince1970 - 1_795_428_904.123) < 0.001 } == true)
        #expect(VaultTime.parse("2026-11-23T10:15:04Z") == Date(timeIntervalSince1970: 1_795_428_904))
        #expect(VaultTime.parse("2026-11-23T12:15:04.5+02:00").map { abs($0.timeIntervalSince1970 - 1_795_428_904.5) < 0.001 } == true)
        #expect(VaultTime.parse("yesterday") == nil)
    }
}
