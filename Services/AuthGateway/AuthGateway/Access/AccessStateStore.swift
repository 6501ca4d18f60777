import Foundation
import Platform

/// What the gateway learns about a request in one round trip to the shared store.
struct AccessState: Sendable, Equatable {
    /// Requests counted in the bucket's window, this one included (`nil` without a bucket).
    var count: Int?
    /// Whether the presented token was revoked (logout, refresh reuse, account deleted or role changed).
    var tokenRevoked: Bool
}

/// The state all gateway replicas share: rate-limit counters and revoked tokens.
protocol AccessStateStore: Sendable {
    /// Counts a request against `bucket` in `window` and reads whether `token` is revoked, in one round trip.
    func check(bucket: RateLimitBucket?, window: RateLimitWindow, windowLength: Duration, token: AuthenticatedUser?) async throws -> AccessState
    /// Rejects one access token from now until it would have expired anyway.
    func revoke(tokenID: String, expiresAt: Date) async throws
    /// Rejects every access token of a user issued before `date`; kept for one access token lifetime.
    func revokeTokens(ofUser userID: String, issuedBefore date: Date, lifetime: Duration) async throws
}

/// Revocations and counters in Redis, shared by every gateway replica. Each key expires on its own: a
/// revoked token's key when the token would have expired, a counter one window after its window.
struct RedisAccessStateStore: AccessStateStore {
    let redis: RedisClient

    func check(bucket: RateLimitBucket?, window: RateLimitWindow, windowLength: Duration, token: AuthenticatedUser?) async throws -> AccessState {
        var commands: [[String]] = []
        if let bucket {
            let key = window.key(for: bucket)
            commands.append(["INCR", key])
            commands.append(["EXPIRE", key, String(2 * max(1, windowLength.components.seconds))])
        }
        if let token {
            commands.append(["EXISTS", Self.revokedKey(token.tokenID)])
            commands.append(["GET", Self.userCutoffKey(token.userID)])
        }
        guard !commands.isEmpty else { return AccessState(count: nil, tokenRevoked: false) }
        let replies = try await redis.pipeline(commands.map { $0.map { Array($0.utf8) } }).map { try $0.checked() }
        var state = AccessState(count: nil, tokenRevoked: false)
        var next = 0
        if bucket != nil {
            state.count = replies[0].int.map(Int.init)
            next = 2
        }
        if let token {
            let revoked = replies[next].int == 1
            let cutoff = replies[next + 1].int
            state.tokenRevoked = revoked || cutoff.map { Self.milliseconds(token.issuedAt) < $0 } ?? false
        }
        return state
    }

    func revoke(tokenID: String, expiresAt: Date) async throws {
        let seconds = Int64(expiresAt.timeIntervalSinceNow.rounded(.up))
        guard seconds > 0 else { return }
        _ = try await redis.execute(["SET", Self.revokedKey(tokenID), "1", "EX", String(seconds)]).checked()
    }

    func revokeTokens(ofUser userID: String, issuedBefore date: Date, lifetime: Duration) async throws {
        _ = try await redis.execute([
            "SET", Self.userCutoffKey(userID), String(Self.milliseconds(date)), "EX", String(max(1, lifetime.components.seconds + 1)),
        ]).checked()
    }

    /// Token times are compared in milliseconds (`iat` carries fractional seconds), so a token issued right
    /// after a revocation is not caught by it.
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }

    static func revokedKey(_ tokenID: String) -> String { "auth:revoked:\(tokenID)" }
    static func userCutoffKey(_ userID: String) -> String { "auth:tokens-before:\(userID)" }
}

/// The same state in memory, for unit tests of the gateway's rules.
actor InMemoryAccessStateStore: AccessStateStore {
    private var counters: [String: Int] = [:]
    private var revoked: Set<String> = []
    private var cutoffs: [String: Date] = [:]

    func check(bucket: RateLimitBucket?, window: RateLimitWindow, windowLength: Duration, token: AuthenticatedUser?) async throws -> AccessState {
        var state = AccessState(count: nil, tokenRevoked: false)
        if let bucket {
            let key = window.key(for: bucket)
            counters[key, default: 0] += 1
            state.count = counters[key]
        }
        if let token {
            let cutoff = cutoffs[token.userID].map(RedisAccessStateStore.milliseconds)
            state.tokenRevoked = revoked.contains(token.tokenID)
                || cutoff.map { RedisAccessStateStore.milliseconds(token.issuedAt) < $0 } ?? false
        }
        return state
    }

    func revoke(tokenID: String, expiresAt: Date) async throws { revoked.insert(tokenID) }

    func revokeTokens(ofUser userID: String, issuedBefore date: Date, lifetime: Duration) async throws {
        cutoffs[userID] = date
    }
}
