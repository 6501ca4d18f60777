import Foundation
import HTTPTypes
import Platform
import SharedModels

/// The configured limits: requests per window for each kind of caller.
struct RateLimitPolicy: Sendable {
    var enabled: Bool
    var window: Duration
    var perUser: Int
    var perAdmin: Int
    var generation: Int
    var anonymousPerAddress: Int

    /// The counter a request is charged to, or `nil` when limits are off.
    func bucket(method: HTTPRequest.Method, path: String, user: AuthenticatedUser?, clientAddress: String) -> RateLimitBucket? {
        bucket(method: method, segments: PathPattern.split(path), user: user, clientAddress: clientAddress)
    }

    /// The same, for a path already split into segments.
    func bucket(method: HTTPRequest.Method, segments: [Substring], user: AuthenticatedUser?, clientAddress: String) -> RateLimitBucket? {
        guard enabled else { return nil }
        guard let user else { return RateLimitBucket(name: "anonymous:\(clientAddress)", limit: anonymousPerAddress) }
        if method == .post, segments == ["api", "v1", "pipelines", "generate"] {
            return RateLimitBucket(name: "generate:\(user.userID)", limit: generation)
        }
        return RateLimitBucket(name: "user:\(user.userID)", limit: user.role == .admin ? perAdmin : perUser)
    }
}

/// One rate-limit counter: a caller in a class of requests, and its limit per window.
struct RateLimitBucket: Sendable, Equatable {
    var name: String
    var limit: Int
}

/// Fixed windows aligned to the epoch, so every gateway replica counts into the same Redis key.
struct RateLimitWindow: Sendable, Equatable {
    /// Window number since the epoch.
    var index: Int64
    /// When the window ends, in epoch seconds.
    var resetsAt: Int64

    init(now: Date, length: Duration) {
        let seconds = max(1, Int64(length.components.seconds))
        let epoch = Int64(now.timeIntervalSince1970.rounded(.down))
        self.index = epoch / seconds
        self.resetsAt = (index + 1) * seconds
    }

    /// The Redis key counting `bucket` in this window.
    func key(for bucket: RateLimitBucket) -> String { "ratelimit:\(bucket.name):\(index)" }
}

/// The outcome of counting one request.
struct RateLimitDecision: Sendable, Equatable {
    var limit: Int
    /// Requests counted in this window, this one included.
    var count: Int
    var resetsAt: Int64
    var now: Int64

    var allowed: Bool { count <= limit }
    var remaining: Int { max(0, limit - count) }
    /// Whole seconds until the window resets, at least 1.
    var retryAfter: Int64 { max(1, resetsAt - now) }

    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset` (epoch seconds), and `Retry-After` when refused.
    var headers: HTTPFields {
        var fields: HTTPFields = [
            .rateLimitLimit: String(limit), .rateLimitRemaining: String(remaining), .rateLimitReset: String(resetsAt),
        ]
        if !allowed { fields[.retryAfter] = String(retryAfter) }
        return fields
    }

    /// The 429 for a refused request.
    var error: APIError {
        APIError(.tooManyRequests, code: .rateLimitExceeded,
                 message: "Rate limit of \(limit) requests per window exceeded; retry in \(retryAfter) s",
                 details: ["limit": .number(Double(limit)), "retry_after": .number(Double(retryAfter))],
                 headers: headers)
    }
}

extension HTTPField.Name {
    static let rateLimitLimit = HTTPField.Name("X-RateLimit-Limit")!
    static let rateLimitRemaining = HTTPField.Name("X-RateLimit-Remaining")!
    static let rateLimitReset = HTTPField.Name("X-RateLimit-Reset")!
}
