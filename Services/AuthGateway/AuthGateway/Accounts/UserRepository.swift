import Foundation
import Platform
import SharedModels

/// Storage of accounts.
protocol UserRepository: Sendable {
    /// Creates an account; a taken username or email throws ``UserStoreError/duplicate(field:)``.
    func create(_ user: NewUser) async throws -> User
    /// The account with this id.
    func find(id: Int64) async throws -> User?
    /// The account whose username or email is `login`, ignoring case.
    func find(login: String) async throws -> User?
    /// A page of accounts in id order, and how many there are.
    func list(limit: Int, offset: Int) async throws -> (items: [User], total: Int)
    /// Changes profile fields; a taken email throws ``UserStoreError/duplicate(field:)``.
    func update(id: Int64, changes: UserChanges) async throws -> User?
    /// Changes the role; demoting the last admin throws ``UserStoreError/lastAdmin``.
    func setRole(id: Int64, role: UserRole) async throws -> User?
    /// Deletes the account (its refresh tokens go with it); deleting the last admin throws
    /// ``UserStoreError/lastAdmin``. False when there was no such account.
    func delete(id: Int64) async throws -> Bool
    /// Counts a failed login (starting again from 1 once an earlier lock has expired); at `threshold`
    /// consecutive failures the account is locked until `now + lockFor`.
    /// Returns the account as it is afterwards.
    func recordFailedLogin(id: Int64, threshold: Int, lockFor: Duration, now: Date) async throws -> User?
    /// Clears the failure count and records the login time, unless the account is locked at `now`; returns
    /// whether it did.
    func recordSuccessfulLogin(id: Int64, now: Date) async throws -> Bool
    /// Whether any admin exists.
    func adminExists() async throws -> Bool
}

/// Accounts in `auth.users`.
struct PostgresUserRepository: UserRepository {
    let postgres: PostgresClient
    let users: PostgresIdentifier

    init(postgres: PostgresClient, schema: String) throws {
        self.postgres = postgres
        self.users = try PostgresIdentifier("users", schema: schema)
    }

    private static let columns: PostgresQuery = """
        id, username, email, full_name, password_hash, role, created_at, updated_at, last_login, failed_logins, locked_until
        """

    func create(_ user: NewUser) async throws -> User {
        try await mappingDuplicates {
            try await postgres.query("""
                INSERT INTO \(users) (username, email, full_name, password_hash, role)
                VALUES (\(user.username), \(user.email), \(user.fullName), \(user.passwordHash), \(user.role.rawValue))
                RETURNING \(Self.columns)
                """).map(Self.decode).first!
        }
    }

    func find(id: Int64) async throws -> User? {
        try await postgres.query("SELECT \(Self.columns) FROM \(users) WHERE id = \(id)").map(Self.decode).first
    }

    func find(login: String) async throws -> User? {
        try await postgres.query("""
            SELECT \(Self.columns) FROM \(users) WHERE lower(username) = lower(\(login)) OR lower(email) = lower(\(login))
            ORDER BY (lower(username) = lower(\(login))) DESC LIMIT 1
            """).map(Self.decode).first
    }

    func list(limit: Int, offset: Int) async throws -> (items: [User], total: Int) {
        let rows = try await postgres.query("""
            SELECT \(Self.columns), count(*) OVER () AS total FROM \(users) ORDER BY id LIMIT \(limit) OFFSET \(offset)
            """)
        if let first = rows.first {
            return (try rows.map(Self.decode), try first.decode("total", as: Int.self))
        }
        // An offset past the end still reports the total.
        let total = try await postgres.query("SELECT count(*) AS total FROM \(users)").first!.decode("total", as: Int.self)
        return ([], total)
    }

    func update(id: Int64, changes: UserChanges) async throws -> User? {
        try await mappingDuplicates {
            try await postgres.query("""
                UPDATE \(users) SET full_name = coalesce(\(changes.fullName), full_name),
                    email = coalesce(\(changes.email), email),
                    password_hash = coalesce(\(changes.passwordHash), password_hash),
                    updated_at = now()
                WHERE id = \(id) RETURNING \(Self.columns)
                """).map(Self.decode).first
        }
    }

    func setRole(id: Int64, role: UserRole) async throws -> User? {
        try await postgres.withTransaction { connection in
            if role != .admin { try await ensureNotLastAdmin(id: id, on: connection) }
            return try await connection.query("""
                UPDATE \(users) SET role = \(role.rawValue), updated_at = now() WHERE id = \(id) RETURNING \(Self.columns)
                """).map(Self.decode).first
        }
    }

    func delete(id: Int64) async throws -> Bool {
        try await postgres.withTransaction { connection in
            try await ensureNotLastAdmin(id: id, on: connection)
            return try await connection.query("DELETE FROM \(users) WHERE id = \(id) RETURNING id").count == 1
        }
    }

    /// Locks the admins' rows, so two concurrent demotions cannot both see another admin left.
    private func ensureNotLastAdmin(id: Int64, on connection: PostgresConnection) async throws {
        let admins = try await connection.query("SELECT id FROM \(users) WHERE role = 'admin' ORDER BY id FOR UPDATE")
            .map { try $0.decode("id", as: Int64.self) }
        if admins == [id] { throw UserStoreError.lastAdmin }
    }

    func recordFailedLogin(id: Int64, threshold: Int, lockFor: Duration, now: Date) async throws -> User? {
        let lockedUntil = now.addingTimeInterval(lockFor.secondsValue)
        let failures: PostgresQuery = "CASE WHEN locked_until <= \(now) THEN 1 ELSE failed_logins + 1 END"
        return try await postgres.query("""
            UPDATE \(users) SET failed_logins = \(failures),
                locked_until = CASE WHEN \(failures) >= \(threshold) THEN \(lockedUntil)
                                    WHEN locked_until <= \(now) THEN NULL ELSE locked_until END
            WHERE id = \(id) RETURNING \(Self.columns)
            """).map(Self.decode).first
    }

    func recordSuccessfulLogin(id: Int64, now: Date) async throws -> Bool {
        try await postgres.query("""
            UPDATE \(users) SET failed_logins = 0, locked_until = NULL, last_login = \(now)
            WHERE id = \(id) AND (locked_until IS NULL OR locked_until <= \(now)) RETURNING id
            """).count == 1
    }

    func adminExists() async throws -> Bool {
        try await postgres.query("SELECT 1 FROM \(users) WHERE role = 'admin' LIMIT 1").count == 1
    }

    private func mappingDuplicates<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresError where error.code == .uniqueViolation {
            throw UserStoreError.duplicate(field: error.constraint == "users_email_key" ? "email" : "username")
        }
    }

    private static func decode(_ row: PostgresRow) throws -> User {
        let roleName = try row.decode("role", as: String.self)
        guard let role = UserRole(rawValue: roleName) else { throw PostgresDecodingError(UserRole.self) }
        return User(
            id: try row.decode("id"), username: try row.decode("username"), email: try row.decode("email"),
            fullName: try row.decode("full_name"), passwordHash: try row.decode("password_hash"), role: role,
            createdAt: try row.decode("created_at"), updatedAt: try row.decode("updated_at"),
            lastLogin: try row.decode("last_login"), failedLogins: try row.decode("failed_logins"),
            lockedUntil: try row.decode("locked_until"))
    }
}

/// Accounts in memory, for unit tests of the controllers and token logic.
actor InMemoryUserRepository: UserRepository {
    private var users: [Int64: User] = [:]
    private var nextID: Int64 = 1

    func create(_ new: NewUser) async throws -> User {
        try checkUnique(username: new.username, email: new.email, except: nil)
        let now = Date()
        let user = User(id: nextID, username: new.username, email: new.email, fullName: new.fullName,
                        passwordHash: new.passwordHash, role: new.role, createdAt: now, updatedAt: now,
                        lastLogin: nil, failedLogins: 0, lockedUntil: nil)
        users[user.id] = user
        nextID += 1
        return user
    }

    func find(id: Int64) async throws -> User? { users[id] }

    func find(login: String) async throws -> User? {
        let login = login.lowercased()
        return users.values.sorted { $0.id < $1.id }.first { $0.username.lowercased() == login }
            ?? users.values.sorted { $0.id < $1.id }.first { $0.email.lowercased() == login }
    }

    func list(limit: Int, offset: Int) async throws -> (items: [User], total: Int) {
        let all = users.values.sorted { $0.id < $1.id }
        return (Array(all.dropFirst(offset).prefix(limit)), all.count)
    }

    func update(id: Int64, changes: UserChanges) async throws -> User? {
        guard var user = users[id] else { return nil }
        if let email = changes.email { try checkUnique(username: nil, email: email, except: id) }
        user.fullName = changes.fullName ?? user.fullName
        user.email = changes.email ?? user.email
        user.passwordHash = changes.passwordHash ?? user.passwordHash
        user.updatedAt = Date()
        users[id] = user
        return user
    }

    func setRole(id: Int64, role: UserRole) async throws -> User? {
        if role != .admin { try ensureNotLastAdmin(id: id) }
        guard var user = users[id] else { return nil }
        user.role = role
        user.updatedAt = Date()
        users[id] = user
        return user
    }

    func delete(id: Int64) async throws -> Bool {
        try ensureNotLastAdmin(id: id)
        return users.removeValue(forKey: id) != nil
    }

    func recordFailedLogin(id: Int64, threshold: Int, lockFor: Duration, now: Date) async throws -> User? {
        guard var user = users[id] else { return nil }
        if let lockedUntil = user.lockedUntil, lockedUntil <= now {
            user.failedLogins = 0
            user.lockedUntil = nil
        }
        user.failedLogins += 1
        if user.failedLogins >= threshold { user.lockedUntil = now.addingTimeInterval(lockFor.secondsValue) }
        users[id] = user
        return user
    }

    func recordSuccessfulLogin(id: Int64, now: Date) async throws -> Bool {
        guard let user = users[id] else { return false }
        if let lockedUntil = user.lockedUntil, lockedUntil > now { return false }
        users[id]?.failedLogins = 0
        users[id]?.lockedUntil = nil
        users[id]?.lastLogin = now
        return true
    }

    func adminExists() async throws -> Bool { users.values.contains { $0.role == .admin } }

    private func ensureNotLastAdmin(id: Int64) throws {
        if users.values.filter({ $0.role == .admin }).map(\.id) == [id] { throw UserStoreError.lastAdmin }
    }

    private func checkUnique(username: String?, email: String, except: Int64?) throws {
        for user in users.values where user.id != except {
            if let username, user.username.lowercased() == username.lowercased() { throw UserStoreError.duplicate(field: "username") }
            if user.email.lowercased() == email.lowercased() { throw UserStoreError.duplicate(field: "email") }
        }
    }
}
