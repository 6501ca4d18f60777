import Crypto
import Foundation
import JWTKit
import Platform
import SharedModels
import Testing

@Suite struct AccessTokenTests {
    let privateKey = try! EdDSA.PrivateKey()

    func signer() async -> AccessTokenSigner { await AccessTokenSigner(privateKey: privateKey) }

    func claims(issuedAt: Date = Date(), lifetime: Duration = .seconds(3600)) -> AccessTokenClaims {
        AccessTokenClaims(userID: "user_7", role: .engineer, tokenID: "jti-1", issuedAt: issuedAt, lifetime: lifetime)
    }

    func rejection(_ token: String, verifier: AccessTokenVerifier) async -> ErrorCode? {
        do {
            _ = try await verifier.verify(token)
            return nil
        } catch let error as APIError {
            #expect(error.status == .unauthorized)
            return error.code
        } catch {
            return .internalError
        }
    }

    @Test func signedTokenVerifiesWithItsClaims() async throws {
        let signer = await signer()
        let token = try await signer.sign(claims())
        let user = try await AccessTokenVerifier(publicKey: signer.publicKey).verify(token)
        #expect(user.userID == "user_7")
        #expect(user.role == .engineer)
        #expect(user.tokenID == "jti-1")
        #expect(abs(user.expiresAt.timeIntervalSince(user.issuedAt) - 3600) < 0.001)
        let header = try #require(Data(base64URLOrBase64: String(token.split(separator: ".")[0])))
        let fields = try JSONDecoder().decode([String: String].self, from: header)
        #expect(fields["alg"] == "EdDSA")
        #expect(fields["kid"] == signer.jwks.keys.first?.kid)
    }

    @Test func expiredTokenIsTokenExpired() async throws {
        let signer = await signer()
        let token = try await signer.sign(claims(issuedAt: Date().addingTimeInterval(-7200)))
        #expect(await rejection(token, verifier: AccessTokenVerifier(publicKey: signer.publicKey)) == .tokenExpired)
    }

    @Test func aRememberedTokenStillExpires() async throws {
        let signer = await signer()
        let verifier = await AccessTokenVerifier(publicKey: signer.publicKey)
        let issued = Date()
        let token = try await signer.sign(claims(issuedAt: issued, lifetime: .seconds(60)))
        #expect(try await verifier.verify(token, now: issued).userID == "user_7")
        #expect(try await verifier.verify(token, now: issued.addingTimeInterval(30)).userID == "user_7")
        do {
            _ = try await verifier.verify(token, now: issued.addingTimeInterval(61))
            Issue.record("an expired token was accepted from the cache")
        } catch let error as APIError {
            #expect(error.code == .tokenExpired)
        }
    }

    @Test func tokenOfAnotherKeyIsInvalid() async throws {
        let other = await AccessTokenSigner(privateKey: try EdDSA.PrivateKey())
        let token = try await other.sign(claims())
        #expect(await rejection(token, verifier: AccessTokenVerifier(publicKey: await signer().publicKey)) == .invalidToken)
    }

    @Test func tamperedPayloadIsInvalid() async throws {
        let signer = await signer()
        let parts = try await signer.sign(claims()).split(separator: ".").map(String.init)
        var payload = try JSONSerialization.jsonObject(with: #require(Data(base64URLOrBase64: parts[1]))) as! [String: Any]
        payload["role"] = "admin"
        let forged = try JSONSerialization.data(withJSONObject: payload).base64URLEncodedString()
        let token = [parts[0], forged, parts[2]].joined(separator: ".")
        #expect(await rejection(token, verifier: AccessTokenVerifier(publicKey: signer.publicKey)) == .invalidToken)
    }

    @Test func algNoneIsInvalid() async throws {
        let signer = await signer()
        let parts = try await signer.sign(claims()).split(separator: ".").map(String.init)
        let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URLEncodedString()
        for token in [header + "." + parts[1] + ".", header + "." + parts[1] + "." + parts[2]] {
            #expect(await rejection(token, verifier: AccessTokenVerifier(publicKey: signer.publicKey)) == .invalidToken)
        }
    }

    @Test func hmacTokenSignedWithThePublicKeyIsInvalid() async throws {
        // The classic algorithm confusion: HS256 keyed with the published public key.
        let signer = await signer()
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(key: SymmetricKey(data: signer.publicKey.rawRepresentation)), digestAlgorithm: .sha256)
        let token = try await keys.sign(claims())
        #expect(await rejection(token, verifier: AccessTokenVerifier(publicKey: signer.publicKey)) == .invalidToken)
    }

    @Test(arguments: ["", "abc", "a.b.c", "eyJhbGciOiJFZERTQSJ9..", "....."])
    func malformedTokenIsInvalid(token: String) async throws {
        #expect(await rejection(token, verifier: AccessTokenVerifier(publicKey: await signer().publicKey)) == .invalidToken)
    }

    @Test func jwksDocumentVerifiesTheSignersTokens() async throws {
        let signer = await signer()
        let document = try JSONDecoder().decode(JSONWebKeySet.self, from: JSONEncoder().encode(signer.jwks))
        #expect(document.keys.count == 1)
        #expect(document.keys[0].kty == "OKP")
        #expect(document.keys[0].crv == "Ed25519")
        #expect(document.keys[0].alg == "EdDSA")
        let verifier = try await AccessTokenVerifier(jwks: document)
        #expect(try await verifier.verify(signer.sign(claims())).userID == "user_7")
    }

    @Test func privateKeyIsReadFromBase64SeedOrPEM() throws {
        let seed = privateKey.rawRepresentation
        #expect(try AccessTokenSigner.privateKey(from: seed.base64EncodedString()) == privateKey)
        #expect(try AccessTokenSigner.privateKey(from: seed.base64URLEncodedString() + "\n") == privateKey)
        #expect(try AccessTokenSigner.privateKey(from: privateKey.pemRepresentation) == privateKey)
        #expect(throws: AccessTokenSigner.InvalidKey.self) { try AccessTokenSigner.privateKey(from: "not a key") }
        #expect(throws: AccessTokenSigner.InvalidKey.self) { try AccessTokenSigner.privateKey(from: Data(count: 16).base64EncodedString()) }
    }

    @Test func bearerTokenIsTakenOnlyFromABearerAuthorization() {
        #expect(AccessTokenVerifier.bearerToken(in: [.authorization: "Bearer abc.def"]) == "abc.def")
        #expect(AccessTokenVerifier.bearerToken(in: [.authorization: "bearer   abc"]) == "abc")
        #expect(AccessTokenVerifier.bearerToken(in: [.authorization: "Basic dXNlcjpwYXNz"]) == nil)
        #expect(AccessTokenVerifier.bearerToken(in: [.authorization: "Bearer "]) == nil)
        #expect(AccessTokenVerifier.bearerToken(in: [:]) == nil)
    }
}
