import Crypto
import Foundation
import Platform

/// The answer of login and refresh.
struct TokenPair: Codable, Sendable, Equatable {
    var accessToken: String
    var refreshToken: String
    var tokenType: String
    var expiresIn: Int

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case refreshToken = "refresh_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
    }
}

/// Issues, rotates and revokes tokens: short-lived signed access tokens and opaque single-use refresh tokens
/// grouped in families (one family per login).
struct TokenService: Sendable {
    let signer: AccessTokenSigner
    let refreshTokens: any RefreshTokenStore
    let state: any AccessStateStore
    let accessLifetime: Duration
    let refreshLifetime: Duration

    /// A new access and refresh token for `user`, in `family` (a new family for a login).
    func issue(for user: User, family: UUID = UUID(), now: Date = Date()) async throws -> TokenPair {
        let issued = try await makePair(for: user, family: family, now: now)
        try await refreshTokens.insert(hash: issued.hash, record: issued.record)
        return issued.result
    }

    /// A signed access token and a new refresh token, with the record to store for the latter.
    private func makePair(for user: User, family: UUID, now: Date) async throws -> (hash: String, record: RefreshTokenRecord, result: TokenPair) {
        let claims = AccessTokenClaims(userID: user.publicID, role: user.role, tokenID: UUID().uuidString.lowercased(),
                                       issuedAt: now, lifetime: accessLifetime)
        let accessToken = try await signer.sign(claims)
        let refreshToken = Self.makeRefreshToken()
        let record = RefreshTokenRecord(
            familyID: family, userID: user.id,
            accessToken: IssuedAccessToken(tokenID: claims.jti.value, expiresAt: claims.exp.value),
            expiresAt: now.addingTimeInterval(refreshLifetime.secondsValue))
        let pair = TokenPair(accessToken: accessToken, refreshToken: refreshToken, tokenType: "bearer",
                             expiresIn: Int(accessLifetime.components.seconds))
        return (Self.hash(refreshToken), record, pair)
    }

    /// Rotates a refresh token: the presented one is spent and a new pair is issued in its family. A spent
    /// token presented again revokes the whole family, including the access tokens issued in it.
    func refresh(_ refreshToken: String, users: any UserRepository, now: Date = Date()) async throws -> TokenPair {
        let rotation = try await refreshTokens.rotate(hash: Self.hash(refreshToken), now: now) {
            (record: RefreshTokenRecord) async throws -> (hash: String, record: RefreshTokenRecord, result: TokenPair)? in
            guard let user = try await users.find(id: record.userID) else { return nil }
            return try await makePair(for: user, family: record.familyID, now: now)
        }
        switch rotation.use {
        case .valid:
            guard let pair = rotation.result else { throw APIError.invalidRefreshToken }
            return pair
        case .reused(let record):
            try await revoke(try await refreshTokens.revokeFamily(record.familyID, now: now))
            throw APIError(.unauthorized, code: .invalidToken,
                           message: "This refresh token was already used; the session has been revoked, log in again")
        case .invalid:
            throw APIError.invalidRefreshToken
        }
    }

    /// Ends the session of an access token: it and its refresh token family stop working.
    func logout(_ user: AuthenticatedUser, now: Date = Date()) async throws {
        try await state.revoke(tokenID: user.tokenID, expiresAt: user.expiresAt)
        try await revoke(try await refreshTokens.revokeFamily(ofAccessToken: user.tokenID, now: now))
    }

    /// Ends every session of the user, the caller's own included: all refresh token families and all access
    /// tokens (password changed).
    func endAllSessions(of user: User, now: Date = Date()) async throws {
        try await revoke(try await refreshTokens.revokeAll(userID: user.id, now: now))
        try await revokeAccessTokens(of: user, now: now)
    }

    /// Rejects every access token the user holds (role changed, account deleted).
    func revokeAccessTokens(of user: User, now: Date = Date()) async throws {
        try await state.revokeTokens(ofUser: user.publicID, issuedBefore: now, lifetime: accessLifetime)
    }

    private func revoke(_ tokens: [IssuedAccessToken]) async throws {
        for token in tokens { try await state.revoke(tokenID: token.tokenID, expiresAt: token.expiresAt) }
    }

    /// `rt_` and 32 random bytes, base64url.
    static func makeRefreshToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "rt_" + Data(bytes).base64URLEncodedString()
    }

    /// The stored form: SHA-256, hex.
    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

extension APIError {
    /// 401 for an unknown, expired or revoked refresh token.
    static let invalidRefreshToken = APIError(.unauthorized, code: .invalidToken, message: "The refresh token is invalid or expired")
}
