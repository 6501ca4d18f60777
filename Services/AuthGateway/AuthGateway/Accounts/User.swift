import Foundation
import SharedModels

/// A platform account as stored; `passwordHash` is a bcrypt hash and never leaves the service.
struct User: Sendable, Equatable {
    var id: Int64
    var username: String
    var email: String
    var fullName: String
    var passwordHash: String
    var role: UserRole
    var createdAt: Date
    var updatedAt: Date
    var lastLogin: Date?
    /// Consecutive failed logins since the last success.
    var failedLogins: Int
    /// Logins are refused until then.
    var lockedUntil: Date?

    /// The public id, `user_<n>`.
    var publicID: String { UserID.format(id) }
}

/// The fields of an account to create.
struct NewUser: Sendable {
    var username: String
    var email: String
    var fullName: String
    var passwordHash: String
    var role: UserRole
}

/// The body of `POST /auth/register` and of an admin's `POST /users` (only the latter honours `role`).
struct NewAccountRequest: Decodable {
    var username: String
    var email: String
    var password: String
    var fullName: String?
    var role: UserRole?

    enum CodingKeys: String, CodingKey {
        case username, email, password, role
        case fullName = "full_name"
    }
}

/// The profile fields a `PUT /users/{id}` may change; `nil` leaves a field as it is.
struct UserChanges: Sendable {
    var fullName: String?
    var email: String?
    var passwordHash: String?
}

/// Public user ids: `user_<n>` for the database id `n`.
enum UserID {
    /// `user_<n>`.
    static func format(_ id: Int64) -> String { "user_\(id)" }

    /// The database id of `user_<n>` (a bare number is accepted too), or `nil`.
    static func parse(_ text: String) -> Int64? {
        let digits = text.hasPrefix("user_") ? text.dropFirst(5) : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let id = Int64(digits), id > 0 else { return nil }
        return id
    }
}

/// Failures of account storage that the client caused.
enum UserStoreError: Error, Equatable {
    /// The username or email (the associated field) belongs to another account.
    case duplicate(field: String)
    /// The change would leave the platform without an admin.
    case lastAdmin
}

/// The user as the API shows it (`002-platform-api.md`, "Current User"); never the password or its hash.
struct UserResponse: Codable, Sendable, Equatable {
    var id: String
    var username: String
    var email: String
    var fullName: String
    var role: UserRole
    var createdAt: Date
    var updatedAt: Date
    var lastLogin: Date?

    init(_ user: User) {
        self.id = user.publicID
        self.username = user.username
        self.email = user.email
        self.fullName = user.fullName
        self.role = user.role
        self.createdAt = user.createdAt
        self.updatedAt = user.updatedAt
        self.lastLogin = user.lastLogin
    }

    enum CodingKeys: String, CodingKey {
        case id, username, email, role
        case fullName = "full_name"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case lastLogin = "last_login"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(username, forKey: .username)
        try container.encode(email, forKey: .email)
        try container.encode(fullName, forKey: .fullName)
        try container.encode(role, forKey: .role)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        // `last_login` is always present, `null` before the first login.
        try container.encode(lastLogin, forKey: .lastLogin)
    }
}
