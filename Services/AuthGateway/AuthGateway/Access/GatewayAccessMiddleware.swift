import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Platform

/// Authenticates, authorizes and rate-limits every `/api/v1/` request before it reaches a controller or the proxy.
///
/// In order: the policy says who may call the route; the bearer token is verified; one round trip to the shared
/// store counts the request (per user, or per address without a valid token) and reads the token's revocation;
/// then 429 over the limit, 401 for a missing, invalid, expired or revoked token, 403 for a role the route
/// does not admit. Every answer under `/api/v1/`, errors included, carries
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
        // By segments, as the router matches: `/api/v1/x`, `/api/v1/x/` and (were it not refused earlier) `//api/v1/x` alike.
        let segments = PathPattern.split(path)
        guard segments.starts(with: ["api", "v1"]) else { return try await next(request, context) }
        let access = policy.access(method: request.method, segments: segments)

        // A request without a valid token is counted as anonymous (per address), so guessing tokens is limited
        // like guessing passwords, and its 401 carries the rate-limit headers too.
        var user: AuthenticatedUser?
        var authenticationError: APIError?
        if case .role = access {
            if let token = AccessTokenVerifier.bearerToken(in: request.headers) {
                do {
                    user = try await verifier.verify(token)
                } catch let error as APIError {
                    authenticationError = error
                }
            } else {
                authenticationError = .missingToken
            }
        }

        let now = Date()
        let window = RateLimitWindow(now: now, length: rateLimits.window)
        let bucket = rateLimits.bucket(method: request.method, segments: segments, user: user, clientAddress: clientAddress(request, context))
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
            if let decision, !decision.allowed { throw decision.error }
            if let authenticationError { throw authenticationError }
            if found.tokenRevoked { throw APIError.invalidToken }
            if case .role(let minimum) = access, let user, user.role < minimum { throw APIError.permissionDenied }

            var context = context
            context.user = user
            if let user { context.logger[metadataKey: "user_id"] = "\(user.userID)" }
            var response = try await next(request, context)
            response.headers.append(contentsOf: limitHeaders)
            return response
        } catch {
            guard !limitHeaders.isEmpty else { throw error }
            // The router's own errors pass on as they are (a 404 of no route may become a 405 further out).
            if var error = error as? HTTPError {
                for field in limitHeaders where error.headers[field.name] == nil { error.headers.append(field) }
                throw error
            }
            var apiError = APIError.from(error)
            if apiError.status.code >= 500, !(error is APIError) {
                context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(path)"])
            }
            for field in limitHeaders where apiError.headers[field.name] == nil { apiError.headers.append(field) }
            throw apiError
        }
    }

    /// The caller's address: the peer, or, behind a trusted load balancer, the last `X-Forwarded-For` entry:
    /// the one the balancer appended. Earlier entries come from the client and could be anything.
    private func clientAddress(_ request: Request, _ context: Context) -> String {
        if trustForwardedFor, let forwarded = request.headers[values: .forwardedFor].last,
           let last = forwarded.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !last.isEmpty {
            return last
        }
        return context.clientAddress ?? "unknown"
    }
}

extension HTTPField.Name {
    /// `X-Forwarded-For`.
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
}
