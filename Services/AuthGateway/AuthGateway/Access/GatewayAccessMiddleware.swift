import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Platform

/// Authenticates, authorizes and rate-limits every `/api/v1/` request before it reaches a controller or the proxy.
///
/// In order: the policy says who may call the route; a protected route needs a valid bearer token (401);
/// one round trip to the shared store counts the request and reads the token's revocation (401 when revoked,
/// 429 over the limit); then the role is checked (403). Every answer under `/api/v1/`, errors included, carries
/// the `X-RateLimit-*` headers of the caller's bucket.
struct GatewayAccessMiddleware: RouterMiddleware {
    typealias Context = PlatformRequestContext

    let policy: AccessPolicy
    let rateLimits: RateLimitPolicy
    let verifier: AccessTokenVerifier
    let state: any AccessStateStore
    let trustForwardedFor: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/api/v1/") else { return try await next(request, context) }
        let access = policy.access(method: request.method, path: path)

        var user: AuthenticatedUser?
        if case .role = access {
            guard let token = AccessTokenVerifier.bearerToken(in: request.headers) else { throw APIError.missingToken }
            user = try await verifier.verify(token)
        }

        let now = Date()
        let window = RateLimitWindow(now: now, length: rateLimits.window)
        let bucket = rateLimits.bucket(method: request.method, path: path, user: user, clientAddress: clientAddress(request, context))
        let found: AccessState
        do {
            found = try await state.check(bucket: bucket, window: window, windowLength: rateLimits.window, token: user)
        } catch {
            // Without the shared store neither revocations nor limits can be checked: fail closed.
            context.logger.error("access state unavailable", metadata: ["error": "\(error)"])
            throw APIError(.serviceUnavailable, code: .serviceUnavailable, message: "Authorization is temporarily unavailable")
        }
        let decision = bucket.map {
            RateLimitDecision(limit: $0.limit, count: found.count ?? 0, resetsAt: window.resetsAt, now: Int64(now.timeIntervalSince1970))
        }
        let limitHeaders = decision?.headers ?? [:]

        do {
            if found.tokenRevoked { throw APIError.invalidToken }
            if let decision, !decision.allowed { throw decision.error }
            if case .role(let minimum) = access, let user, user.role < minimum { throw APIError.permissionDenied }

            var context = context
            context.user = user
            if let user { context.logger[metadataKey: "user_id"] = "\(user.userID)" }
            var response = try await next(request, context)
            response.headers.append(contentsOf: limitHeaders)
            return response
        } catch {
            guard !limitHeaders.isEmpty else { throw error }
            var apiError = APIError.from(error)
            if apiError.status.code >= 500, !(error is APIError) {
                context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(path)"])
            }
            for field in limitHeaders where apiError.headers[field.name] == nil { apiError.headers.append(field) }
            throw apiError
        }
    }

    /// The caller's address: the peer, or the first `X-Forwarded-For` hop when the gateway sits behind a
    /// trusted load balancer.
    private func clientAddress(_ request: Request, _ context: Context) -> String {
        if trustForwardedFor, let forwarded = request.headers[.forwardedFor],
           let first = forwarded.split(separator: ",").first?.trimmingCharacters(in: .whitespaces), !first.isEmpty {
            return first
        }
        return context.clientAddress ?? "unknown"
    }
}

extension HTTPField.Name {
    /// `X-Forwarded-For`.
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
}
