import Configuration
import Foundation
import Platform

/// The gateway's own settings (beyond ``ServiceSettings``), read from the same configuration.
struct GatewayConfiguration: Sendable {
    /// The Ed25519 signing key, as configured (`auth.jwt.private_key`, or the file `auth.jwt.private_key_file`);
    /// `nil` means generate one for this process only.
    var signingKey: String?
    /// Access token lifetime (`auth.access_token.ttl_seconds`, 3600).
    var accessTokenLifetime: Duration
    /// Refresh token lifetime (`auth.refresh_token.ttl_seconds`, 30 days).
    var refreshTokenLifetime: Duration
    /// bcrypt cost (`auth.bcrypt.cost`, 12).
    var bcryptCost: UInt8
    /// Consecutive failed logins that lock an account (`auth.lockout.threshold`, 5).
    var lockoutThreshold: Int
    /// How long a locked account stays locked (`auth.lockout.seconds`, 900).
    var lockoutDuration: Duration
    /// The first admin (`admin.username`, `admin.password`, `admin.email`).
    var bootstrapAdmin: BootstrapAdmin?
    /// Rate limits (`ratelimit.*`).
    var rateLimits: RateLimitPolicy
    /// Base URLs of the services behind the gateway (`service.url.<name>`).
    var upstreams: [Upstream: String]
    /// Time to connect to a service (`gateway.upstream.connect_timeout_ms`, 2000).
    var upstreamConnectTimeout: Duration
    /// Longest silence while waiting for a service's answer (`gateway.upstream.timeout_seconds`, 30); then 504.
    var upstreamReadTimeout: Duration
    /// The largest request body the proxy forwards (`gateway.upload.max_bytes`, 100 MiB); JSON bodies the
    /// gateway reads itself stay limited to 1 MB.
    var maxUploadSize: Int64
    /// Origins allowed by CORS (`gateway.cors.origins`, comma-separated; `*` for any; empty disables CORS).
    var corsOrigins: [String]
    /// Whether to take the client address from `X-Forwarded-For` (`gateway.trust_forwarded_for`): only behind
    /// a trusted load balancer.
    var trustForwardedFor: Bool

    /// The first administrator, created at start-up when no admin exists.
    struct BootstrapAdmin: Sendable {
        var username: String
        var email: String
        var password: String
    }

    init(reader: ConfigReader) throws {
        signingKey = try reader.secret(forKey: "auth.jwt.private_key")
        accessTokenLifetime = .seconds(max(1, reader.int(forKey: "auth.access_token.ttl_seconds", default: 3600)))
        refreshTokenLifetime = .seconds(max(60, reader.int(forKey: "auth.refresh_token.ttl_seconds", default: 30 * 24 * 3600)))
        bcryptCost = UInt8(clamping: min(31, max(4, reader.int(forKey: "auth.bcrypt.cost", default: 12))))
        lockoutThreshold = max(1, reader.int(forKey: "auth.lockout.threshold", default: 5))
        lockoutDuration = .seconds(max(1, reader.int(forKey: "auth.lockout.seconds", default: 900)))
        if let password = reader.string(forKey: "admin.password", isSecret: true), !password.isEmpty {
            bootstrapAdmin = BootstrapAdmin(
                username: reader.string(forKey: "admin.username", default: "admin"),
                email: reader.string(forKey: "admin.email", default: "admin@platform.local"),
                password: password)
        } else {
            bootstrapAdmin = nil
        }
        rateLimits = RateLimitPolicy(
            enabled: reader.bool(forKey: "ratelimit.enabled", default: true),
            window: .seconds(max(1, reader.int(forKey: "ratelimit.window_seconds", default: 60))),
            perUser: reader.int(forKey: "ratelimit.user", default: 100),
            perAdmin: reader.int(forKey: "ratelimit.admin", default: 1000),
            generation: reader.int(forKey: "ratelimit.generate", default: 10),
            anonymousPerAddress: reader.int(forKey: "ratelimit.anonymous", default: 30))
        var upstreams: [Upstream: String] = [:]
        for upstream in Upstream.allCases {
            let url = reader.string(forKey: ConfigKey(["service", "url", upstream.configName]), default: "http://127.0.0.1:\(upstream.defaultPort)")
            upstreams[upstream] = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        self.upstreams = upstreams
        upstreamConnectTimeout = .milliseconds(max(1, reader.int(forKey: "gateway.upstream.connect_timeout_ms", default: 2000)))
        upstreamReadTimeout = .seconds(max(1, reader.int(forKey: "gateway.upstream.timeout_seconds", default: 30)))
        maxUploadSize = Int64(max(0, reader.int(forKey: "gateway.upload.max_bytes", default: 100 << 20)))
        corsOrigins = reader.string(forKey: "gateway.cors.origins", default: "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        trustForwardedFor = reader.bool(forKey: "gateway.trust_forwarded_for", default: false)
    }
}
