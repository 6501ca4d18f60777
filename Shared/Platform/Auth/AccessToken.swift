import Crypto
import Foundation
import HTTPTypes
import JWTKit
import SharedModels
import Synchronization

/// The claims of a platform access token: who (`sub`, a `user_<n>` id), with which role, which token (`jti`),
/// issued when and valid until when.
public struct AccessTokenClaims: JWTPayload, Equatable {
    /// The user's public id (`user_12`).
    public var sub: SubjectClaim
    /// The user's role when the token was issued.
    public var role: UserRole
    /// The token's own id, the key of the revocation list.
    public var jti: IDClaim
    /// Expiry.
    public var exp: ExpirationClaim
    /// Issue time.
    public var iat: IssuedAtClaim

    /// Creates claims for a user, valid for `lifetime` from `now`.
    public init(userID: String, role: UserRole, tokenID: String, issuedAt now: Date, lifetime: Duration) {
        self.sub = SubjectClaim(value: userID)
        self.role = role
        self.jti = IDClaim(value: tokenID)
        self.iat = IssuedAtClaim(value: now)
        self.exp = ExpirationClaim(value: now.addingTimeInterval(lifetime.secondsValue))
    }

    /// Expiry is checked by ``AccessTokenVerifier`` against its own clock (also for tokens it remembers).
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// The identity a verified access token proves.
public struct AuthenticatedUser: Sendable, Equatable {
    /// Public user id (`user_12`).
    public var userID: String
    /// Role carried by the token.
    public var role: UserRole
    /// The token's `jti`.
    public var tokenID: String
    /// When the token was issued.
    public var issuedAt: Date
    /// When the token expires.
    public var expiresAt: Date

    /// Creates the identity from verified claims.
    public init(claims: AccessTokenClaims) {
        self.userID = claims.sub.value
        self.role = claims.role
        self.tokenID = claims.jti.value
        self.issuedAt = claims.iat.value
        self.expiresAt = claims.exp.value
    }
}

/// Verifies access tokens: an EdDSA (Ed25519) signature by one of the known keys and an unexpired `exp`.
///
/// Every rejection is a 401 in the contract's terms: `TOKEN_EXPIRED` for a token that was valid and has
/// expired, `INVALID_TOKEN` for everything else (bad signature, another algorithm including `none`,
/// malformed, unknown key).
public struct AccessTokenVerifier: Sendable {
    private let keys: JWTKeyCollection
    private let verified = VerifiedTokenCache()

    /// A verifier trusting one public key.
    public init(publicKey: EdDSA.PublicKey) async {
        let keys = JWTKeyCollection()
        await keys.add(eddsa: publicKey, kid: JSONWebKeySet.keyID(of: publicKey))
        self.keys = keys
    }

    /// A verifier trusting the Ed25519 keys of a JWKS document.
    public init(jwks: JSONWebKeySet) async throws {
        let keys = JWTKeyCollection()
        for key in jwks.keys where key.kty == "OKP" && key.crv == "Ed25519" {
            let publicKey = try EdDSA.PublicKey(x: key.x, curve: .ed25519)
            await keys.add(eddsa: publicKey, kid: key.kid.map { JWKIdentifier(string: $0) })
        }
        self.keys = keys
    }

    /// The identity of a valid token, or an ``APIError`` (401) saying why it is not.
    ///
    /// A client presents the same token for every request of its hour, so a token that verified once is
    /// remembered (by its exact text, until it expires) and the signature is not checked again. Revocation is
    /// not a property of the token and stays the caller's check.
    public func verify(_ token: String, now: Date = Date()) async throws -> AuthenticatedUser {
        let user: AuthenticatedUser
        if let remembered = verified.user(for: token) {
            user = remembered
        } else {
            do {
                user = AuthenticatedUser(claims: try await keys.verify(token, as: AccessTokenClaims.self))
            } catch {
                throw APIError.invalidToken
            }
            verified.remember(user, for: token)
        }
        guard user.expiresAt > now else {
            verified.forget(token)
            throw APIError.tokenExpired
        }
        return user
    }

    /// The bearer token of an `Authorization` header value, or `nil` when it is absent or not a bearer token.
    public static func bearerToken(in headers: HTTPFields) -> String? {
        // On every request: plain Swift, no Foundation string bridging (it showed up in profiles).
        guard let value = headers[.authorization] else { return nil }
        let scheme = "bearer".utf8
        guard value.utf8.count > scheme.count,
              zip(value.utf8, scheme).allSatisfy({ $0 | 0x20 == $1 }),
              value.utf8.dropFirst(scheme.count).first == UInt8(ascii: " ") else { return nil }
        var token = Substring(value).dropFirst(scheme.count)
        while token.first == " " { token = token.dropFirst() }
        while token.last == " " { token = token.dropLast() }
        return token.isEmpty ? nil : String(token)
    }
}

/// Tokens whose signature verified, by their text, until they are found expired. Bounded: when full it starts over, which costs only
/// re-verification.
final class VerifiedTokenCache: Sendable {
    private let entries = Mutex<[String: AuthenticatedUser]>([:])
    private let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    func user(for token: String) -> AuthenticatedUser? {
        entries.withLock { $0[token] }
    }

    func forget(_ token: String) {
        entries.withLock { $0[token] = nil }
    }

    func remember(_ user: AuthenticatedUser, for token: String) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = user
        }
    }
}

/// Signs access tokens with the gateway's Ed25519 private key and publishes the matching public key.
public struct AccessTokenSigner: Sendable {
    private let keys: JWTKeyCollection
    private let keyID: String
    /// The public half, as published at `/.well-known/jwks.json`.
    public let publicKey: EdDSA.PublicKey

    /// A signer with a private key.
    public init(privateKey: EdDSA.PrivateKey) async {
        let keys = JWTKeyCollection()
        self.publicKey = privateKey.publicKey
        self.keyID = JSONWebKeySet.keyID(of: privateKey.publicKey)
        await keys.add(eddsa: privateKey, kid: JWKIdentifier(string: keyID))
        self.keys = keys
    }

    /// A signed compact JWT of the claims.
    public func sign(_ claims: AccessTokenClaims) async throws -> String {
        try await keys.sign(claims, kid: JWKIdentifier(string: keyID))
    }

    /// The JWKS document of the public key.
    public var jwks: JSONWebKeySet {
        JSONWebKeySet(keys: [.init(
            kty: "OKP", crv: "Ed25519", x: publicKey.rawRepresentation.base64URLEncodedString(),
            kid: keyID, alg: "EdDSA", use: "sig")])
    }

    /// Reads an Ed25519 private key: base64 or base64url of the 32-byte seed, or a PEM document.
    public static func privateKey(from text: String) throws -> EdDSA.PrivateKey {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("-----BEGIN") { return try EdDSA.PrivateKey(pem: trimmed) }
        guard let seed = Data(base64URLOrBase64: trimmed), seed.count == 32 else {
            throw InvalidKey(reason: "expected the base64 of a 32-byte Ed25519 seed or a PEM private key")
        }
        return EdDSA.PrivateKey(backing: try Curve25519.Signing.PrivateKey(rawRepresentation: seed))
    }

    /// A key that could not be read; says what was expected, never the key.
    public struct InvalidKey: Error, CustomStringConvertible {
        /// What was wrong.
        public var reason: String
        public var description: String { "invalid signing key: \(reason)" }
    }
}

/// A JSON Web Key Set (RFC 7517) of Ed25519 public keys (RFC 8037 `OKP`).
public struct JSONWebKeySet: Codable, Sendable, Equatable {
    /// One public key.
    public struct Key: Codable, Sendable, Equatable {
        /// Key type, `OKP`.
        public var kty: String
        /// Curve, `Ed25519`.
        public var crv: String?
        /// The public key, base64url.
        public var x: String
        /// Key id.
        public var kid: String?
        /// Algorithm, `EdDSA`.
        public var alg: String?
        /// Use, `sig`.
        public var use: String?
    }

    /// The keys.
    public var keys: [Key]

    /// A stable key id: the first 16 hex digits of the SHA-256 of the raw public key.
    static func keyID(of key: EdDSA.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    static func keyID(of key: EdDSA.PublicKey) -> JWKIdentifier {
        JWKIdentifier(string: keyID(of: key))
    }
}

extension APIError {
    /// 401 `INVALID_TOKEN`.
    public static let invalidToken = APIError(
        .unauthorized, code: .invalidToken, message: "The access token is invalid",
        headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#])
    /// 401 `TOKEN_EXPIRED`.
    public static let tokenExpired = APIError(
        .unauthorized, code: .tokenExpired, message: "The access token has expired",
        headers: [.wwwAuthenticate: #"Bearer error="invalid_token", error_description="expired""#])
    /// 401 when a protected route is called without a bearer token.
    public static let missingToken = APIError(
        .unauthorized, code: .authFailed, message: "Authentication required: send Authorization: Bearer <access_token>",
        headers: [.wwwAuthenticate: "Bearer"])
    /// 403 `PERMISSION_DENIED`.
    public static let permissionDenied = APIError(
        .forbidden, code: .permissionDenied, message: "Your role does not allow this operation")
}

extension Data {
    /// Decodes base64url (padded or not) or standard base64.
    public init?(base64URLOrBase64 text: String) {
        var normalized = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        normalized += String(repeating: "=", count: (4 - normalized.count % 4) % 4)
        self.init(base64Encoded: normalized)
    }

    /// base64url without padding (RFC 7515 §2).
    public func base64URLEncodedString() -> String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
