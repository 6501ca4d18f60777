import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import Platform
import SharedModels
import Testing

@Suite struct ServiceTokenTests {
    let key = ServiceTokenKey.random()

    /// The error code a verification fails with; `nil` when it succeeds.
    private func rejection(_ verify: () async throws -> some Any) async -> ErrorCode? {
        do {
            _ = try await verify()
            return nil
        } catch {
            return (error as? APIError)?.code
        }
    }

    @Test func aTokenNamesItsCallerToItsAudience() async throws {
        let issuer = await ServiceTokenIssuer(key: key, service: "pipeline-runner")
        let token = try await issuer.token(for: "connections-vault")
        let verifier = await ServiceTokenVerifier(key: key, audience: "connections-vault")
        #expect(try await verifier.verify(token) == "pipeline-runner")
    }

    @Test func aTokenIsRefusedByAnotherAudienceAnotherKeyAndAfterItsLifetime() async throws {
        let issuer = await ServiceTokenIssuer(key: key, service: "scheduler", lifetime: .seconds(60))
        let now = Date()
        let token = try await issuer.token(for: "connections-vault", now: now)
        #expect(await rejection {
            try await ServiceTokenVerifier(key: key, audience: "file-storage").verify(token, now: now)
        } == .invalidToken)
        #expect(await rejection {
            try await ServiceTokenVerifier(key: .random(), audience: "connections-vault").verify(token, now: now)
        } == .invalidToken)
        #expect(await rejection {
            try await ServiceTokenVerifier(key: key, audience: "connections-vault").verify(token, now: now.addingTimeInterval(61))
        } == .tokenExpired)
    }

    @Test func aTokenValidForLongerThanAllowedIsRefused() async throws {
        let longLived = try await ServiceTokenIssuer(key: key, service: "scheduler", lifetime: .seconds(3600)).token(for: "connections-vault")
        #expect(await rejection { try await ServiceTokenVerifier(key: key, audience: "connections-vault").verify(longLived) } == .invalidToken)
        #expect(await rejection {
            try await ServiceTokenVerifier(key: key, audience: "connections-vault", maxLifetime: .seconds(7200)).verify(longLived)
        } == nil)
    }

    @Test func unsignedTokensAreRefused() async throws {
        let payload = #"{"sub":"service:pipeline-runner","aud":["connections-vault"],"jti":"x","iat":\#(Int(Date().timeIntervalSince1970)),"exp":\#(Int(Date().timeIntervalSince1970) + 30)}"#
        let unsigned = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URLEncodedString() + "." + Data(payload.utf8).base64URLEncodedString() + "."
        #expect(await rejection { try await ServiceTokenVerifier(key: key, audience: "connections-vault").verify(unsigned) } == .invalidToken)
    }

    @Test func aTokenIsReusedForHalfItsLifetime() async throws {
        let issuer = await ServiceTokenIssuer(key: key, service: "scheduler", lifetime: .seconds(60))
        let now = Date()
        let first = try await issuer.token(for: "connections-vault", now: now)
        let again = try await issuer.token(for: "connections-vault", now: now.addingTimeInterval(29))
        let renewed = try await issuer.token(for: "connections-vault", now: now.addingTimeInterval(31))
        #expect(first == again)
        #expect(first != renewed)
        let other = try await issuer.token(for: "file-storage", now: now)
        #expect(other != first)
    }

    @Test func userAccessTokensAndServiceTokensNeverPassForEachOther() async throws {
        let signingKey = Curve25519.Signing.PrivateKey()
        let signer = await AccessTokenSigner(privateKey: EdDSA.PrivateKey(backing: signingKey))
        let userToken = try await signer.sign(AccessTokenClaims(userID: "user_1", role: .admin, tokenID: "t1", issuedAt: Date(), lifetime: .seconds(60)))
        #expect(await rejection {
            try await ServiceTokenVerifier(key: key, audience: "connections-vault").verify(userToken)
        } == .invalidToken)
        let serviceToken = try await ServiceTokenIssuer(key: key, service: "scheduler").token(for: "connections-vault")
        #expect(await rejection {
            try await AccessTokenVerifier(publicKey: signer.publicKey).verify(serviceToken)
        } == .invalidToken)
    }

    @Test func aKeyMustBeLongEnough() {
        #expect(throws: ServiceTokenKey.InvalidKey.self) { try ServiceTokenKey(base64: Data(count: 16).base64EncodedString()) }
        #expect(throws: ServiceTokenKey.InvalidKey.self) { try ServiceTokenKey(base64: "not base64!") }
        #expect(throws: Never.self) { try ServiceTokenKey(base64: Data(count: 32).base64EncodedString()) }
    }

    // MARK: - /internal routes

    private func app(users signer: AccessTokenSigner) async -> some ApplicationProtocol {
        let router = Router(context: PlatformRequestContext.self)
        router.middlewares.add(RequestIDMiddleware())
        router.middlewares.add(ErrorEnvelopeMiddleware())
        router.middlewares.add(InternalCallerMiddleware(
            services: await ServiceTokenVerifier(key: key, audience: "connections-vault"),
            users: AccessTokenKeys(verifier: await AccessTokenVerifier(publicKey: signer.publicKey))))
        router.get("internal/for-runners") { _, context in try context.requireService(in: ["pipeline-runner"]) }
        router.get("internal/for-admins") { _, context in try context.requireUser(atLeast: .admin).userID }
        router.get("public") { _, context in context.callingService ?? "nobody" }
        return Application(router: router)
    }

    @Test func internalRoutesAdmitOnlyTheCallersTheyName() async throws {
        let signer = await AccessTokenSigner(privateKey: EdDSA.PrivateKey(backing: Curve25519.Signing.PrivateKey()))
        func userToken(_ role: UserRole) async throws -> String {
            try await signer.sign(AccessTokenClaims(userID: "user_\(role.rawValue)", role: role, tokenID: UUID().uuidString, issuedAt: Date(), lifetime: .seconds(60)))
        }
        let runner = try await ServiceTokenIssuer(key: key, service: "pipeline-runner").token(for: "connections-vault")
        let scheduler = try await ServiceTokenIssuer(key: key, service: "scheduler").token(for: "connections-vault")
        let runnerForOthers = try await ServiceTokenIssuer(key: key, service: "pipeline-runner").token(for: "file-storage")
        let expired = try await ServiceTokenIssuer(key: key, service: "pipeline-runner").token(for: "connections-vault", now: Date().addingTimeInterval(-120))
        let admin = try await userToken(.admin)
        let editor = try await userToken(.engineer)

        try await app(users: signer).test(.router) { client in
            func status(_ path: String, _ token: String?) async throws -> (HTTPResponse.Status, String) {
                let headers: HTTPFields = token.map { [.authorization: "Bearer \($0)"] } ?? [:]
                return try await client.execute(uri: path, method: .get, headers: headers) { ($0.status, String(buffer: $0.body)) }
            }
            let forRunners = [
                try await status("/internal/for-runners", runner), try await status("/internal/for-runners", scheduler),
                try await status("/internal/for-runners", admin), try await status("/internal/for-runners", runnerForOthers),
                try await status("/internal/for-runners", nil), try await status("/internal/for-runners", expired),
            ]
            #expect(forRunners.map(\.0) == [.ok, .forbidden, .forbidden, .unauthorized, .unauthorized, .unauthorized])
            #expect(forRunners[5].1.contains("TOKEN_EXPIRED"))
            #expect(forRunners[0].1 == "pipeline-runner")
            let forAdmins = [
                try await status("/internal/for-admins", admin), try await status("/internal/for-admins", editor),
                try await status("/internal/for-admins", runner),
            ]
            #expect(forAdmins.map(\.0) == [.ok, .forbidden, .forbidden])
            #expect(forAdmins[0].1 == "user_admin")
            // Outside /internal the middleware does nothing, not even read a token.
            let outside = try await status("/public", runner)
            #expect(outside == (.ok, "nobody"))
        }
    }
}
