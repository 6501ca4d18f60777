import Hummingbird
import SharedModels

/// Guards a service's `/internal/*` routes, which the gateway never proxies: every request needs a bearer token,
/// either a service token addressed to this service (the caller is then `context.callingService`) or a user's
/// access token (for operator routes such as a vault rewrap; the user is then `context.user`). Routes say which
/// callers they accept with ``AuthenticatedRequestContext/requireService(in:)`` and
/// ``AuthenticatedRequestContext/requireUser(atLeast:)``.
public struct InternalCallerMiddleware<Context: AuthenticatedRequestContext>: RouterMiddleware {
    let services: ServiceTokenVerifier?
    let users: AccessTokenKeys
    let protectedRoot: String

    /// Creates the middleware; without a service token verifier only users' access tokens are accepted.
    public init(services: ServiceTokenVerifier?, users: AccessTokenKeys, protectedRoot: String = "internal") {
        self.services = services
        self.users = users
        self.protectedRoot = protectedRoot
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = try request.bearerToken(under: protectedRoot) else { return try await next(request, context) }
        var context = context
        if let caller = try await serviceCaller(token) {
            context.callingService = caller
            context.logger[metadataKey: "calling_service"] = "\(caller)"
        } else {
            context.authenticate(try await users.verify(token))
        }
        return try await next(request, context)
    }

    /// The service a valid service token names; `nil` when the token is not a service token (it may be a user's).
    private func serviceCaller(_ token: String) async throws -> String? {
        guard let services else { return nil }
        do {
            return try await services.verify(token)
        } catch let error as APIError where error.code == .tokenExpired {
            throw error
        } catch {
            return nil
        }
    }
}

extension AuthenticatedRequestContext {
    /// The calling service when it is one of `allowed` (any service when `nil`); 403 for any other caller, users
    /// included.
    public func requireService(in allowed: Set<String>?) throws -> String {
        guard let callingService, allowed?.contains(callingService) ?? true else { throw APIError.permissionDenied }
        return callingService
    }

    /// The user when their role is at least `role`; 403 for anyone else, services included.
    public func requireUser(atLeast role: UserRole) throws -> AuthenticatedUser {
        guard let user, user.role >= role else { throw APIError.permissionDenied }
        return user
    }
}
