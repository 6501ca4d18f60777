import Foundation
import Hummingbird
import Platform
import SharedModels

/// Accounts (`/api/v1/users*`): the caller's own profile, and administration (the access policy admits only
/// admins to everything here but `me` and `PUT /{id}`).
struct UsersController: Sendable {
    let accounts: AccountService

    struct UpdateRequest: Decodable {
        var fullName: String?
        var email: String?
        var password: String?
        var currentPassword: String?

        enum CodingKeys: String, CodingKey {
            case email, password
            case fullName = "full_name"
            case currentPassword = "current_password"
        }
    }

    struct RoleRequest: Decodable {
        var role: UserRole
    }

    func addRoutes(to group: RouterGroup<PlatformRequestContext>) {
        group.get("me") { _, context in
            let caller = try Self.caller(context)
            guard let id = UserID.parse(caller.userID), let user = try await accounts.users.find(id: id) else {
                throw APIError.invalidToken
            }
            return try JSONResponse(UserResponse(user))
        }
        group.get { request, context in
            try Self.requireAdmin(context)
            let (limit, offset) = try request.pagination()
            let page = try await accounts.users.list(limit: limit, offset: offset)
            return try JSONResponse(Page(items: page.items.map(UserResponse.init), total: page.total, limit: limit, offset: offset))
        }
        group.post { request, context in
            try Self.requireAdmin(context)
            let body = try await request.decodeJSON(as: NewAccountRequest.self, context: context)
            let user = try await accounts.register(username: body.username, email: body.email, password: body.password,
                                                   fullName: body.fullName ?? "", role: body.role ?? .analyst)
            return try JSONResponse(UserResponse(user), status: .created)
        }
        group.get(":id") { _, context in
            try Self.requireAdmin(context)
            let id = try Self.userID(context)
            guard let user = try await accounts.users.find(id: id) else { throw APIError.notFound("user", id: UserID.format(id)) }
            return try JSONResponse(UserResponse(user))
        }
        group.put(":id") { request, context in
            let id = try Self.userID(context)
            let body = try await request.decodeJSON(as: UpdateRequest.self, context: context)
            let user = try await accounts.updateProfile(
                target: id, actor: try Self.caller(context), fullName: body.fullName, email: body.email,
                password: body.password, currentPassword: body.currentPassword)
            return try JSONResponse(UserResponse(user))
        }
        group.patch(":id/role") { request, context in
            try Self.requireAdmin(context)
            let id = try Self.userID(context)
            let body = try await request.decodeJSON(as: RoleRequest.self, context: context)
            return try JSONResponse(UserResponse(try await accounts.setRole(target: id, role: body.role)))
        }
        group.delete(":id") { _, context in
            try Self.requireAdmin(context)
            try await accounts.delete(target: try Self.userID(context))
            return Response(status: .noContent)
        }
    }

    private static func caller(_ context: PlatformRequestContext) throws -> AuthenticatedUser {
        guard let user = context.user else { throw APIError.missingToken }
        return user
    }

    /// The access policy admits only admins here already; checked again so no routing quirk can skip it.
    private static func requireAdmin(_ context: PlatformRequestContext) throws {
        guard try caller(context).role == .admin else { throw APIError.permissionDenied }
    }

    private static func userID(_ context: PlatformRequestContext) throws -> Int64 {
        let text = context.parameters.get("id") ?? ""
        guard let id = UserID.parse(text) else { throw APIError.notFound("user", id: text) }
        return id
    }
}
