import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore

/// A request context that can carry the identity of a verified access token or service token.
public protocol AuthenticatedRequestContext: RequestIDContext {
    /// The verified user, once a middleware has checked an access token.
    var user: AuthenticatedUser? { get set }
    /// The calling service (`scheduler`), once ``InternalCallerMiddleware`` has checked a service token.
    var callingService: String? { get set }
}

/// Where a service gets the key it verifies access tokens with: a configured public key, or the gateway's
/// JWKS document, fetched on first use, again after `maxAge` (so a rotated-out key stops being trusted), and
/// again (at most every `refetchInterval`) when a token does not verify with the keys at hand.
public actor AccessTokenKeys {
    private enum Source {
        case fixed(AccessTokenVerifier)
        case jwks(url: String)
    }

    private let source: Source
    private let httpClient: HTTPClient
    private let refetchInterval: Duration
    private let maxAge: Duration
    private var cached: AccessTokenVerifier?
    private var lastFetch: ContinuousClock.Instant?

    /// Keys that never change.
    public init(verifier: AccessTokenVerifier) {
        self.source = .fixed(verifier)
        self.httpClient = .shared
        self.refetchInterval = .zero
        self.maxAge = .zero
    }

    /// Keys fetched from a JWKS URL (the gateway's `/.well-known/jwks.json`).
    public init(jwksURL: String, httpClient: HTTPClient = .shared, refetchInterval: Duration = .seconds(10), maxAge: Duration = .seconds(300)) {
        self.source = .jwks(url: jwksURL)
        self.httpClient = httpClient
        self.refetchInterval = refetchInterval
        self.maxAge = maxAge
    }

    /// Verifies a token; a token that fails with the cached keys is tried once more with freshly fetched ones,
    /// so a rotated gateway key is picked up without a restart.
    public func verify(_ token: String) async throws -> AuthenticatedUser {
        switch source {
        case .fixed(let verifier):
            return try await verifier.verify(token)
        case .jwks(let url):
            if let cached, let lastFetch, ContinuousClock.now - lastFetch < maxAge {
                do {
                    return try await cached.verify(token)
                } catch let error as APIError where error.code == .invalidToken && mayRefetch {
                    // The gateway may have a new key; if it cannot be asked, the token is simply not valid.
                    guard let fresh = try? await fetch(url) else { throw error }
                    return try await fresh.verify(token)
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
            let response = try await httpClient.fetch(HTTPClientRequest(url: url), timeout: .seconds(5))
            guard response.status == .ok else { throw APIError.keysUnavailable }
            let verifier = try await AccessTokenVerifier(jwks: JSONDecoder().decode(JSONWebKeySet.self, from: response.body))
            cached = verifier
            return verifier
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.keysUnavailable
        }
    }
}

/// Requires a valid bearer token on every request whose first path segment is `protectedRoot` (a service's
/// public `/api/...` routes) and puts the identity in the context.
public struct AccessTokenMiddleware<Context: AuthenticatedRequestContext>: RouterMiddleware {
    let keys: AccessTokenKeys
    let protectedRoot: String
    let isPublic: @Sendable ([Substring]) -> Bool

    /// Creates the middleware. `isPublic` names the few routes under `protectedRoot` that authenticate their
    /// callers another way (a webhook's secret), by the path's segments.
    public init(keys: AccessTokenKeys, protectedRoot: String = "api", isPublic: @escaping @Sendable ([Substring]) -> Bool = { _ in false }) {
        self.keys = keys
        self.protectedRoot = protectedRoot
        self.isPublic = isPublic
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = try request.bearerToken(under: protectedRoot, unless: isPublic) else { return try await next(request, context) }
        var context = context
        context.authenticate(try await keys.verify(token))
        return try await next(request, context)
    }
}

extension Request {
    /// The bearer token of a request under `root` (its first path segment); `nil` for requests elsewhere and for
    /// the public routes `isPublic` names, 401 for any other under `root` without a token. By segments, as the
    /// router matches them: `//api/x` is `/api/x`.
    func bearerToken(under root: String, unless isPublic: ([Substring]) -> Bool = { _ in false }) throws -> String? {
        let segments = uri.path.split(separator: "/")
        guard segments.first == Substring(root), !isPublic(segments) else { return nil }
        guard let token = AccessTokenVerifier.bearerToken(in: headers) else { throw APIError.missingToken }
        return token
    }
}

extension AuthenticatedRequestContext {
    /// Records a verified user in the context and its log lines.
    mutating func authenticate(_ user: AuthenticatedUser) {
        self.user = user
        logger[metadataKey: "user_id"] = "\(user.userID)"
    }
}

extension APIError {
    /// 503 when the token keys cannot be fetched from the gateway.
    public static let keysUnavailable = APIError(
        .serviceUnavailable, code: .serviceUnavailable, message: "The token verification keys are unavailable")
}
