import Foundation
import Logging
import Platform
import SharedModels

/// The rules of accounts: registration, login with lockout, profile and role changes, deletion, and the
/// first admin. Controllers call this; it calls the stores.
struct AccountService: Sendable {
    let users: any UserRepository
    let passwords: PasswordHasher
    let tokens: TokenService
    let lockoutThreshold: Int
    let lockoutDuration: Duration

    /// Validates and creates an account.
    func register(username: String, email: String, password: String, fullName: String, role: UserRole) async throws -> User {
        try AccountRules.validate(username: username)
        try AccountRules.validate(email: email)
        try AccountRules.validate(password: password)
        try AccountRules.validate(fullName: fullName)
        let hash = try await passwords.hash(password)
        do {
            return try await users.create(NewUser(username: username, email: email, fullName: fullName, passwordHash: hash, role: role))
        } catch let error as UserStoreError {
            throw error.apiError
        }
    }

    /// Checks credentials (username or email) and issues tokens. Unknown users and wrong passwords get the
    /// same answer after the same bcrypt work; `lockoutThreshold` failures in a row lock the account.
    func login(login: String, password: String, now: Date = Date()) async throws -> TokenPair {
        let user = try await users.find(login: login)
        if let user, let lockedUntil = user.lockedUntil, lockedUntil > now {
            throw APIError.accountLocked(until: lockedUntil, now: now)
        }
        guard try await passwords.verify(password, against: user?.passwordHash), let user else {
            if let user, let updated = try await users.recordFailedLogin(id: user.id, threshold: lockoutThreshold, lockFor: lockoutDuration, now: now),
               let lockedUntil = updated.lockedUntil, lockedUntil > now {
                throw APIError.accountLocked(until: lockedUntil, now: now)
            }
            throw APIError.badCredentials
        }
        // A lock set by parallel wrong guesses while this password was being checked still applies.
        guard try await users.recordSuccessfulLogin(id: user.id, now: now) else {
            let lockedUntil = try await users.find(id: user.id)?.lockedUntil ?? now.addingTimeInterval(lockoutDuration.secondsValue)
            throw APIError.accountLocked(until: lockedUntil, now: now)
        }
        return try await tokens.issue(for: user, now: now)
    }

    /// Changes profile fields of `target`, as `actor`: the account itself or an admin. A new password needs
    /// the current one, except when an admin resets another account's password.
    func updateProfile(target: Int64, actor: AuthenticatedUser, fullName: String?, email: String?,
                       password: String?, currentPassword: String?) async throws -> User {
        let isSelf = actor.userID == UserID.format(target)
        guard isSelf || actor.role == .admin else { throw APIError.permissionDenied }
        guard let user = try await users.find(id: target) else { throw APIError.notFound("user", id: UserID.format(target)) }
        if let fullName { try AccountRules.validate(fullName: fullName) }
        if let email { try AccountRules.validate(email: email) }
        var newHash: String?
        if let password {
            try AccountRules.validate(password: password)
            if isSelf {
                guard let currentPassword else {
                    throw APIError.validation(field: "current_password", reason: "is required to change the password")
                }
                guard try await passwords.verify(currentPassword, against: user.passwordHash) else {
                    throw APIError.validation(field: "current_password", reason: "does not match")
                }
            }
            newHash = try await passwords.hash(password)
        }
        do {
            guard let updated = try await users.update(id: target, changes: UserChanges(fullName: fullName, email: email, passwordHash: newHash)) else {
                throw APIError.notFound("user", id: UserID.format(target))
            }
            // A changed password ends every session, the caller's own included: whoever knew the old password
            // may hold a refresh token. The answer to this request still arrives; the client logs in again.
            if newHash != nil { try await tokens.endAllSessions(of: updated) }
            return updated
        } catch let error as UserStoreError {
            throw error.apiError
        }
    }

    /// Changes a role; the account's current access tokens stop working (they carry the old role). Setting the
    /// role an account already has changes nothing, its tokens included.
    func setRole(target: Int64, role: UserRole) async throws -> User {
        if let current = try await users.find(id: target), current.role == role { return current }
        do {
            guard let user = try await users.setRole(id: target, role: role) else { throw APIError.notFound("user", id: UserID.format(target)) }
            try await tokens.revokeAccessTokens(of: user)
            return user
        } catch let error as UserStoreError {
            throw error.apiError
        }
    }

    /// Deletes an account and rejects its tokens.
    func delete(target: Int64) async throws {
        guard let user = try await users.find(id: target) else { throw APIError.notFound("user", id: UserID.format(target)) }
        do {
            guard try await users.delete(id: target) else { throw APIError.notFound("user", id: UserID.format(target)) }
        } catch let error as UserStoreError {
            throw error.apiError
        }
        try await tokens.revokeAccessTokens(of: user)
    }

    /// Creates the first admin when there is none. Returns whether it did.
    @discardableResult
    func bootstrapAdmin(_ admin: GatewayConfiguration.BootstrapAdmin?, logger: Logger) async throws -> Bool {
        guard try await !users.adminExists() else { return false }
        guard let admin else {
            logger.warning("no admin exists and ADMIN_PASSWORD is not set: nobody can manage users")
            return false
        }
        do {
            let user = try await register(username: admin.username, email: admin.email, password: admin.password, fullName: "Administrator", role: .admin)
            logger.notice("created the first admin", metadata: ["user_id": "\(user.publicID)", "username": "\(user.username)"])
            return true
        } catch let error as APIError {
            // Another replica created it at the same moment, a non-admin holds the name, or ADMIN_* is invalid:
            // the gateway still serves, and the log says why there is no admin.
            logger.error("could not create the first admin", metadata: ["reason": "\(error.message)"])
            return false
        }
    }
}

extension UserStoreError {
    var apiError: APIError {
        switch self {
        case .duplicate(let field):
            APIError(.conflict, code: .duplicateResource, message: "A user with this \(field) already exists",
                     details: ["field": .string(field)])
        case .lastAdmin:
            APIError(.conflict, code: .validationError, message: "The last admin cannot be demoted or deleted",
                     details: ["reason": .string("last_admin")])
        }
    }
}

extension APIError {
    /// 401 `AUTH_FAILED`, the same for an unknown user and a wrong password.
    static let badCredentials = APIError(.unauthorized, code: .authFailed, message: "Invalid username or password")

    /// 429 `ACCOUNT_LOCKED` with `Retry-After`.
    static func accountLocked(until: Date, now: Date) -> APIError {
        let seconds = max(1, Int(until.timeIntervalSince(now).rounded(.up)))
        return APIError(.tooManyRequests, code: .accountLocked,
                        message: "Too many failed logins: the account is locked for \(seconds) s",
                        details: ["retry_after": .number(Double(seconds))], headers: [.retryAfter: String(seconds)])
    }
}
