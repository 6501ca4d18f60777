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
    /// Spends the token if it is valid and records the successor `next` makes, atomically and under the
    /// family's lock, so a concurrent revocation of the family catches the successor too. `next` returning
    /// `nil` (the account is gone) records nothing. Says what the token was, and what `next` returned.
    func rotate<T: Sendable>(
        hash: String, now: Date,
        next: @Sendable (RefreshTokenRecord) async throws -> (hash: String, record: RefreshTokenRecord, result: T)?
    ) async throws -> (use: RefreshTokenUse, result: T?)
    /// Revokes every token of a family; returns the access tokens issued with them that have not expired.
    func revokeFamily(_ familyID: UUID, now: Date) async throws -> [IssuedAccessToken]
    /// Revokes the family of the session an access token belongs to (logout).
    func revokeFamily(ofAccessToken tokenID: String, now: Date) async throws -> [IssuedAccessToken]
    /// Revokes every family of a user (password changed).
    func revokeAll(userID: Int64, now: Date) async throws -> [IssuedAccessToken]
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
        try await postgres.withConnection { try await insert(hash: hash, record: record, on: $0) }
    }

    private func insert(hash: String, record: RefreshTokenRecord, on connection: PostgresConnection) async throws {
        try await connection.query("""
            INSERT INTO \(table) (token_hash, family_id, user_id, access_token_id, access_expires_at, expires_at)
            VALUES (\(hash), \(record.familyID), \(record.userID), \(record.accessToken.tokenID),
                    \(record.accessToken.expiresAt), \(record.expiresAt))
            """)
    }

    func rotate<T: Sendable>(
        hash: String, now: Date,
        next: @Sendable (RefreshTokenRecord) async throws -> (hash: String, record: RefreshTokenRecord, result: T)?
    ) async throws -> (use: RefreshTokenUse, result: T?) {
        try await postgres.withTransaction { connection in
            guard let family = try await connection.query("SELECT family_id FROM \(table) WHERE token_hash = \(hash)").first else {
                return (.invalid, nil)
            }
            try await lock(family: try family.decode("family_id", as: UUID.self), on: connection)
            let claimed = try await connection.query("""
                UPDATE \(table) SET used_at = \(now)
                WHERE token_hash = \(hash) AND used_at IS NULL AND revoked_at IS NULL AND expires_at > \(now)
                RETURNING family_id, user_id, access_token_id, access_expires_at, expires_at
                """)
            if let row = claimed.first {
                let record = try Self.decode(row)
                guard let successor = try await next(record) else { return (.valid(record), nil) }
                try await insert(hash: successor.hash, record: successor.record, on: connection)
                return (.valid(record), successor.result)
            }
            let rows = try await connection.query("""
                SELECT family_id, user_id, access_token_id, access_expires_at, expires_at, used_at IS NOT NULL AS used,
                       revoked_at IS NOT NULL AS revoked
                FROM \(table) WHERE token_hash = \(hash)
                """)
            guard let row = rows.first, try row.decode("used", as: Bool.self), !(try row.decode("revoked", as: Bool.self)) else {
                return (.invalid, nil)
            }
            return (.reused(try Self.decode(row)), nil)
        }
    }

    /// Serialises rotation and revocation of one family until the transaction ends.
    private func lock(family: UUID, on connection: PostgresConnection) async throws {
        try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(family.uuidString.lowercased()), 7))")
    }

    func revokeFamily(_ familyID: UUID, now: Date) async throws -> [IssuedAccessToken] {
        try await revoke(where: "family_id = \(familyID)", now: now)
    }

    func revokeFamily(ofAccessToken tokenID: String, now: Date) async throws -> [IssuedAccessToken] {
        try await revoke(where: "access_token_id = \(tokenID)", now: now)
    }

    func revokeAll(userID: Int64, now: Date) async throws -> [IssuedAccessToken] {
        try await revoke(where: "user_id = \(userID)", now: now)
    }

    /// Revokes the families matching `condition`, each under its lock, so no rotation in flight escapes.
    private func revoke(where condition: PostgresQuery, now: Date) async throws -> [IssuedAccessToken] {
        try await postgres.withTransaction { connection in
            let families = try await connection.query("SELECT DISTINCT family_id FROM \(table) WHERE \(condition) ORDER BY family_id")
                .map { try $0.decode("family_id", as: UUID.self) }
            for family in families { try await lock(family: family, on: connection) }
            var tokens: [IssuedAccessToken] = []
            for family in families {
                tokens += try await connection.query("""
                    UPDATE \(table) SET revoked_at = coalesce(revoked_at, \(now)) WHERE family_id = \(family)
                    RETURNING access_token_id, access_expires_at
                    """).compactMap { row in
                    let token = IssuedAccessToken(tokenID: try row.decode("access_token_id"), expiresAt: try row.decode("access_expires_at"))
                    return token.expiresAt > now ? token : nil
                }
            }
            return tokens
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

    /// Not atomic across `next` (actor reentrancy): enough for unit tests of the rules, not for races.
    func rotate<T: Sendable>(
        hash: String, now: Date,
        next: @Sendable (RefreshTokenRecord) async throws -> (hash: String, record: RefreshTokenRecord, result: T)?
    ) async throws -> (use: RefreshTokenUse, result: T?) {
        guard let entry = entries[hash], !entry.revoked else { return (.invalid, nil) }
        if entry.used { return (.reused(entry.record), nil) }
        guard entry.record.expiresAt > now else { return (.invalid, nil) }
        entries[hash]?.used = true
        guard let successor = try await next(entry.record) else { return (.valid(entry.record), nil) }
        entries[successor.hash] = Entry(record: successor.record)
        return (.valid(entry.record), successor.result)
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

    func revokeAll(userID: Int64, now: Date) async throws -> [IssuedAccessToken] {
        var tokens: [IssuedAccessToken] = []
        for family in Set(entries.values.filter { $0.record.userID == userID }.map(\.record.familyID)) {
            tokens += try await revokeFamily(family, now: now)
        }
        return tokens
    }
}
