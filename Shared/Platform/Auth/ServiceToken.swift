import Crypto
import Foundation
import HTTPTypes
import JWTKit

/// The claims of a service token: which service calls (`sub` = `service:<name>`), which service it is meant for
/// (`aud`), and a lifetime of about a minute.
public struct ServiceTokenClaims: JWTPayload, Equatable {
    /// `service:<caller>`.
    public var sub: SubjectClaim
    /// The one service that accepts it.
    public var aud: AudienceClaim
    /// The token's id.
    public var jti: IDClaim
    /// Expiry.
    public var exp: ExpirationClaim
    /// Issue time.
    public var iat: IssuedAtClaim

    /// Audience and expiry are checked by ``ServiceTokenVerifier`` against its own name and clock.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// The key services sign and check service tokens with (`service.token_key`: base64 of at least 32 random
/// bytes, the same for every service of a deployment).
///
/// Why a shared HMAC key and not tokens from the gateway: a service-to-service call then needs no round trip to
/// a third service and keeps working while the gateway restarts. The key is separate from the gateway's Ed25519
/// key and the algorithms differ, so a user's access token never passes as a service token, nor the reverse.
/// What a shared key cannot do: keep one service of the deployment from naming itself another (per-service keys
/// would).
public struct ServiceTokenKey: Sendable {
    fileprivate let key: SymmetricKey

    /// Reads the key; refuses one shorter than 32 bytes.
    public init(base64 text: String) throws {
        guard let bytes = Data(base64URLOrBase64: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count >= 32 else {
            throw InvalidKey()
        }
        self.key = SymmetricKey(data: bytes)
    }

    /// A key that is not the base64 of at least 32 bytes; says so without repeating the key.
    public struct InvalidKey: Error, CustomStringConvertible {
        public var description: String { "service.token_key must be the base64 of at least 32 random bytes" }
    }

    private init(key: SymmetricKey) {
        self.key = key
    }

    /// A fresh random key, for tests.
    public static func random() -> ServiceTokenKey {
        ServiceTokenKey(key: SymmetricKey(size: .bits256))
    }

    fileprivate func collection() async -> JWTKeyCollection {
        await JWTKeyCollection().add(hmac: HMACKey(key: key), digestAlgorithm: .sha256, kid: "platform-service")
    }
}

/// Mints the tokens a service sends to other services' `/internal/*` routes; a token is reused for half its
/// lifetime, so a busy caller signs about one a minute per audience.
public actor ServiceTokenIssuer {
    private let keys: JWTKeyCollection
    private let service: String
    private let lifetime: Duration
    private var minted: [String: (token: String, renewAfter: Date)] = [:]

    /// An issuer for the calling service `service`.
    public init(key: ServiceTokenKey, service: String, lifetime: Duration = .seconds(60)) async {
        self.keys = await key.collection()
        self.service = service
        self.lifetime = lifetime
    }

    /// A bearer token for calls to `audience` (a service name such as `connections-vault`).
    public func token(for audience: String, now: Date = Date()) async throws -> String {
        if let current = minted[audience], current.renewAfter > now { return current.token }
        let claims = ServiceTokenClaims(
            sub: SubjectClaim(value: "service:\(service)"), aud: AudienceClaim(value: [audience]),
            jti: IDClaim(value: UUID().uuidString), exp: ExpirationClaim(value: now.addingTimeInterval(lifetime.secondsValue)),
            iat: IssuedAtClaim(value: now))
        let token = try await keys.sign(claims, kid: "platform-service")
        minted[audience] = (token, now.addingTimeInterval(lifetime.secondsValue / 2))
        return token
    }

    /// The `Authorization` header value for a call to `audience`.
    public func authorization(for audience: String) async throws -> String {
        "Bearer " + (try await token(for: audience))
    }
}

/// Checks service tokens addressed to one service: the HMAC signature, `aud` naming this service, an unexpired
/// `exp` no further away than `maxLifetime` (a leaked token is worth a minute or two, never a year), and a `sub`
/// of the form `service:<name>`.
public struct ServiceTokenVerifier: Sendable {
    private let keys: JWTKeyCollection
    private let audience: String
    private let maxLifetime: Duration

    /// A verifier for the service `audience`.
    public init(key: ServiceTokenKey, audience: String, maxLifetime: Duration = .seconds(120)) async {
        self.keys = await key.collection()
        self.audience = audience
        self.maxLifetime = maxLifetime
    }

    /// The name of the calling service, or a 401 ``APIError`` (`INVALID_TOKEN`, `TOKEN_EXPIRED`).
    public func verify(_ token: String, now: Date = Date()) async throws -> String {
        let claims: ServiceTokenClaims
        do {
            claims = try await keys.verify(token, as: ServiceTokenClaims.self)
        } catch {
            throw APIError.invalidToken
        }
        guard claims.aud.value.contains(audience), claims.sub.value.hasPrefix("service:"), claims.sub.value.count > "service:".count else {
            throw APIError.invalidToken
        }
        guard claims.exp.value > now else { throw APIError.tokenExpired }
        guard claims.exp.value.timeIntervalSince(now) <= maxLifetime.secondsValue else { throw APIError.invalidToken }
        return String(claims.sub.value.dropFirst("service:".count))
    }
}
