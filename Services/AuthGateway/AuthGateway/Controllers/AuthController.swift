import Foundation
import Hummingbird
import Platform
import SharedModels

/// Registration, login, token refresh and logout (`/api/v1/auth/*`).
struct AuthController: Sendable {
    let accounts: AccountService

    struct LoginRequest: Decodable {
        var username: String
        var password: String
    }

    struct RefreshRequest: Decodable {
        var refreshToken: String

        enum CodingKeys: String, CodingKey {
            case refreshToken = "refresh_token"
        }
    }

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.post("register") { request, context in
            // Self-registration always makes an analyst, whatever role the body names.
            let body = try await request.decodeJSON(as: NewAccountRequest.self, context: context)
            let user = try await accounts.register(username: body.username, email: body.email, password: body.password,
                                                   fullName: body.fullName ?? "", role: .analyst)
            return try JSONResponse(UserResponse(user), status: .created)
        }
        group.post("login") { request, context in
            let body = try await request.decodeJSON(as: LoginRequest.self, context: context)
            return try JSONResponse(try await accounts.login(login: body.username, password: body.password))
        }
        group.post("refresh") { request, context in
            let body = try await request.decodeJSON(as: RefreshRequest.self, context: context)
            return try JSONResponse(try await accounts.tokens.refresh(body.refreshToken, users: accounts.users))
        }
        group.post("logout") { _, context in
            guard let user = context.user else { throw APIError.missingToken }
            try await accounts.tokens.logout(user)
            return Response(status: .noContent)
        }
    }
}
