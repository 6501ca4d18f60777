import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore

/// A request context that can carry the identity of a verified access token.
public protocol AuthenticatedRequestContext: RequestIDContext {
    /// The verified caller, once a middleware has checked the bearer token.
    var user: AuthenticatedUser? { get set }
}

/// Where a service gets the key it verifies access tokens with: a configured public key, or the gateway's
/// JWKS document fetched on first use and again (at most every `refetchInterval`) when it stops matching.
public actor AccessTokenKeys {
    private enum Source {
        case fixed(AccessTokenVerifier)
        case jwks(url: String)
    }

    private let source: Source
    private let httpClient: HTTPClient
    private let refetchInterval: Duration
    private var cached: AccessTokenVerifier?
    private var lastFetch: ContinuousClock.Instant?

    /// Keys that never change.
    public init(verifier: AccessTokenVerifier) {
        self.source = .fixed(verifier)
        self.httpClient = .shared
        self.refetchInterval = .zero
    }

    /// Keys fetched from a JWKS URL (the gateway's `/.well-known/jwks.json`).
    public init(jwksURL: String, httpClient: HTTPClient = .shared, refetchInterval: Duration = .seconds(10)) {
        self.source = .jwks(url: jwksURL)
        self.httpClient = httpClient
        self.refetchInterval = refetchInterval
    }

    /// Verifies a token; a token that fails with the cached keys is tried once more with freshly fetched ones,
    /// so a rotated gateway key is picked up without a restart.
    public func verify(_ token: String) async throws -> AuthenticatedUser {
        switch source {
        case .fixed(let verifier):
            return try await verifier.verify(token)
        case .jwks(let url):
            if let cached {
                do {
                    return try await cached.verify(token)
                } catch let error as APIError where error.code == .invalidToken && mayRefetch {
                    return try await fetch(url).verify(token)
                }
            }
            return try await fetch(url).verify(token)
        }
    }

    private var mayRefetch: Bool {
        guard let lastFetch else { return true }
        return ContinuousClock.now - lastFetch >= refetchInterval
    }

    private func fetch(_ url: String) async throws -> AccessTokenVerifier {
        lastFetch = .now
        do {
            let response = try await httpClient.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
            guard response.status == .ok else { throw APIError.keysUnavailable }
            let body = try await response.body.collect(upTo: 1 << 20)
            let verifier = try await AccessTokenVerifier(jwks: JSONDecoder().decode(JSONWebKeySet.self, from: body))
            cached = verifier
            return verifier
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.keysUnavailable
        }
    }
}

/// Requires a valid bearer token on every request whose path starts with one of `protectedPrefixes`
/// (a service's public `/api/` routes) and puts the identity in the context.
public struct AccessTokenMiddleware<Context: AuthenticatedRequestContext>: RouterMiddleware {
    let keys: AccessTokenKeys
    let protectedPrefixes: [String]

    /// Creates the middleware.
    public init(keys: AccessTokenKeys, protectedPrefixes: [String] = ["/api/"]) {
        self.keys = keys
        self.protectedPrefixes = protectedPrefixes
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard protectedPrefixes.contains(where: { path.hasPrefix($0) }) else { return try await next(request, context) }
        guard let token = AccessTokenVerifier.bearerToken(in: request.headers) else { throw APIError.missingToken }
        var context = context
        let user = try await keys.verify(token)
        context.user = user
        context.logger[metadataKey: "user_id"] = "\(user.userID)"
        return try await next(request, context)
    }
}

extension APIError {
    /// 503 when the token keys cannot be fetched from the gateway.
    public static let keysUnavailable = APIError(
        .serviceUnavailable, code: .serviceUnavailable, message: "The token verification keys are unavailable")
}
