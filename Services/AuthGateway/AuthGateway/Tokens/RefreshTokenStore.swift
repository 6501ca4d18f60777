import Foundation
import Platform

/// The access token issued together with a refresh token; revoking the refresh token's family revokes these.
struct IssuedAccessToken: Sendable, Equatable {
    var tokenID: String
    var expiresAt: Date
}

/// A stored refresh token (by hash: the token itself is never stored).
struct RefreshTokenRecord: Sendable, Equatable {
    var familyID: UUID
    var userID: Int64
    var accessToken: IssuedAccessToken
    var expiresAt: Date
}

/// What presenting a refresh token found.
enum RefreshTokenUse: Sendable, Equatable {
    /// Unused, unexpired, unrevoked: it is now marked used.
    case valid(RefreshTokenRecord)
    /// Already used once: someone replays it, and its family must be revoked.
    case reused(RefreshTokenRecord)
    /// Unknown, expired or revoked.
    case invalid
}

/// Storage of refresh tokens and their families.
protocol RefreshTokenStore: Sendable {
    /// Records a new refresh token.
    func insert(hash: String, record: RefreshTokenRecord) async throws
    /// Marks the token used if it is valid, atomically, and says what it was.
    func consume(hash: String, now: Date) async throws -> RefreshTokenUse
    /// Revokes every token of a family; returns the access tokens issued with them that have not expired.
    func revokeFamily(_ familyID: UUID, now: Date) async throws -> [IssuedAccessToken]
    /// Revokes the family of the session an access token belongs to (logout).
    func revokeFamily(ofAccessToken tokenID: String, now: Date) async throws -> [IssuedAccessToken]
}

/// Refresh tokens in `auth.refresh_tokens`.
struct PostgresRefreshTokenStore: RefreshTokenStore {
    let postgres: PostgresClient
    let table: PostgresIdentifier

    init(postgres: PostgresClient, schema: String) throws {
        self.postgres = postgres
        self.table = try PostgresIdentifier("refresh_tokens", schema: schema)
    }

    func insert(hash: String, record: RefreshTokenRecord) async throws {
        try await postgres.query("""
            INSERT INTO \(table) (token_hash, family_id, user_id, access_token_id, access_expires_at, expires_at)
            VALUES (\(hash), \(record.familyID), \(record.userID), \(record.accessToken.tokenID),
                    \(record.accessToken.expiresAt), \(record.expiresAt))
            """)
    }

    func consume(hash: String, now: Date) async throws -> RefreshTokenUse {
        let claimed = try await postgres.query("""
            UPDATE \(table) SET used_at = \(now)
            WHERE token_hash = \(hash) AND used_at IS NULL AND revoked_at IS NULL AND expires_at > \(now)
            RETURNING family_id, user_id, access_token_id, access_expires_at, expires_at
            """)
        if let row = claimed.first { return .valid(try Self.decode(row)) }
        let rows = try await postgres.query("""
            SELECT family_id, user_id, access_token_id, access_expires_at, expires_at, used_at IS NOT NULL AS used,
                   revoked_at IS NOT NULL AS revoked
            FROM \(table) WHERE token_hash = \(hash)
            """)
        guard let row = rows.first, try row.decode("used", as: Bool.self), !(try row.decode("revoked", as: Bool.self)) else {
            return .invalid
        }
        return .reused(try Self.decode(row))
    }

    func revokeFamily(_ familyID: UUID, now: Date) async throws -> [IssuedAccessToken] {
        try await revoke(where: "family_id = \(familyID)", now: now)
    }

    func revokeFamily(ofAccessToken tokenID: String, now: Date) async throws -> [IssuedAccessToken] {
        try await revoke(where: "family_id IN (SELECT family_id FROM \(table) WHERE access_token_id = \(tokenID))", now: now)
    }

    private func revoke(where condition: PostgresQuery, now: Date) async throws -> [IssuedAccessToken] {
        try await postgres.query("""
            UPDATE \(table) SET revoked_at = coalesce(revoked_at, \(now)) WHERE \(condition)
            RETURNING access_token_id, access_expires_at
            """).compactMap { row in
            let token = IssuedAccessToken(tokenID: try row.decode("access_token_id"), expiresAt: try row.decode("access_expires_at"))
            return token.expiresAt > now ? token : nil
        }
    }

    private static func decode(_ row: PostgresRow) throws -> RefreshTokenRecord {
        RefreshTokenRecord(
            familyID: try row.decode("family_id"), userID: try row.decode("user_id"),
            accessToken: IssuedAccessToken(tokenID: try row.decode("access_token_id"), expiresAt: try row.decode("access_expires_at")),
            expiresAt: try row.decode("expires_at"))
    }
}

/// Refresh tokens in memory, for unit tests.
actor InMemoryRefreshTokenStore: RefreshTokenStore {
    private struct Entry {
        var record: RefreshTokenRecord
        var used = false
        var revoked = false
    }

    private var entries: [String: Entry] = [:]

    func insert(hash: String, record: RefreshTokenRecord) async throws {
        entries[hash] = Entry(record: record)
    }

    func consume(hash: String, now: Date) async throws -> RefreshTokenUse {
        guard let entry = entries[hash], !entry.revoked else { return .invalid }
        if entry.used { return .reused(entry.record) }
        guard entry.record.expiresAt > now else { return .invalid }
        entries[hash]?.used = true
        return .valid(entry.record)
    }

    func revokeFamily(_ familyID: UUID, now: Date) async throws -> [IssuedAccessToken] {
        var tokens: [IssuedAccessToken] = []
        for (hash, entry) in entries where entry.record.familyID == familyID {
            entries[hash]?.revoked = true
            if entry.record.accessToken.expiresAt > now { tokens.append(entry.record.accessToken) }
        }
        return tokens
    }

    func revokeFamily(ofAccessToken tokenID: String, now: Date) async throws -> [IssuedAccessToken] {
        guard let family = entries.values.first(where: { $0.record.accessToken.tokenID == tokenID })?.record.familyID else { return [] }
        return try await revokeFamily(family, now: now)
    }
}
