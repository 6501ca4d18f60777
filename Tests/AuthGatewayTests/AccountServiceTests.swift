@testable import AuthGateway
import Foundation
import JWTKit
import Logging
import NIOPosix
import Platform
import SharedModels
import Testing

/// The account and token rules over the in-memory stores (bcrypt at its lowest cost to stay fast).
@Suite struct AccountServiceTests {
    struct Fixture {
        let accounts: AccountService
        let verifier: AccessTokenVerifier
        let state: InMemoryAccessStateStore

        init() async throws {
            let signer = await AccessTokenSigner(privateKey: try EdDSA.PrivateKey())
            let state = InMemoryAccessStateStore()
            let tokens = TokenService(signer: signer, refreshTokens: InMemoryRefreshTokenStore(), state: state,
                                      accessLifetime: .seconds(3600), refreshLifetime: .seconds(86400))
            self.accounts = AccountService(users: InMemoryUserRepository(), passwords: PasswordHasher(cost: 4, threadPool: .singleton),
                                           tokens: tokens, lockoutThreshold: 5, lockoutDuration: .seconds(900))
            self.verifier = await AccessTokenVerifier(publicKey: signer.publicKey)
            self.state = state
        }

        /// Whether the gateway would accept the token: it verifies and is not revoked.
        func accepts(_ token: String) async throws -> Bool {
            guard let user = try? await verifier.verify(token) else { return false }
            let found = try await state.check(bucket: nil, window: RateLimitWindow(now: Date(), length: .seconds(60)),
                                              windowLength: .seconds(60), token: user)
            return !found.tokenRevoked
        }

        func register(_ name: String, role: UserRole = .analyst) async throws -> User {
            try await accounts.register(username: name, email: "\(name)@example.com", password: "passw0rd!", fullName: name, role: role)
        }
    }

    func apiError(_ body: () async throws -> some Any) async -> APIError? {
        do {
            _ = try await body()
            return nil
        } catch {
            return error as? APIError
        }
    }

    @Test func registrationValidatesEachField() async throws {
        let fixture = try await Fixture()
        let cases: [(String, String, String, String)] = [
            ("ab", "a@example.com", "passw0rd!", "username"),
            ("has space", "a@example.com", "passw0rd!", "username"),
            (String(repeating: "a", count: 51), "a@example.com", "passw0rd!", "username"),
            ("alice", "not-an-email", "passw0rd!", "email"),
            ("alice", "a@b", "passw0rd!", "email"),
            ("alice", "a@example.com", "short1", "password"),
            ("alice", "a@example.com", "lettersonly", "password"),
            ("alice", "a@example.com", "12345678", "password"),
        ]
        for (username, email, password, field) in cases {
            let error = await apiError { try await fixture.accounts.register(username: username, email: email, password: password, fullName: "", role: .analyst) }
            #expect(error?.status == .unprocessableContent, "\(username) \(email) \(password)")
            #expect(error?.details?["field"] == .string(field), "\(username) \(email) \(password)")
        }
        let user = try await fixture.register("alice")
        #expect(user.publicID == "user_1")
        #expect(user.passwordHash.hasPrefix("$2"))
        #expect(!user.passwordHash.contains("passw0rd"))
        let duplicate = await apiError { try await fixture.register("ALICE") }
        #expect(duplicate?.status == .conflict)
        #expect(duplicate?.code == .duplicateResource)
    }

    @Test func loginAcceptsUsernameOrEmailAndRejectsBothFailuresAlike() async throws {
        let fixture = try await Fixture()
        _ = try await fixture.register("bob")
        let byName = try await fixture.accounts.login(login: "bob", password: "passw0rd!")
        let byEmail = try await fixture.accounts.login(login: "BOB@example.com", password: "passw0rd!")
        #expect(byName.tokenType == "bearer")
        #expect(byName.expiresIn == 3600)
        #expect(try await fixture.accepts(byName.accessToken))
        #expect(try await fixture.accepts(byEmail.accessToken))
        let wrongPassword = await apiError { try await fixture.accounts.login(login: "bob", password: "wrong-passw0rd") }
        let unknownUser = await apiError { try await fixture.accounts.login(login: "nobody", password: "passw0rd!") }
        #expect(wrongPassword?.status == .unauthorized)
        #expect(wrongPassword?.code == .authFailed)
        #expect(wrongPassword?.message == unknownUser?.message)
        #expect(wrongPassword?.code == unknownUser?.code)
    }

    @Test func fiveFailuresLockTheAccountUntilTheLockEnds() async throws {
        let fixture = try await Fixture()
        _ = try await fixture.register("carol")
        let start = Date()
        for attempt in 1...4 {
            let error = await apiError { try await fixture.accounts.login(login: "carol", password: "bad-passw0rd", now: start) }
            #expect(error?.code == .authFailed, "attempt \(attempt)")
        }
        let fifth = await apiError { try await fixture.accounts.login(login: "carol", password: "bad-passw0rd", now: start) }
        #expect(fifth?.code == .accountLocked)
        #expect(fifth?.status == .tooManyRequests)
        #expect(fifth?.headers[.retryAfter] == "900")
        // Even the right password is refused while locked...
        let locked = await apiError { try await fixture.accounts.login(login: "carol", password: "passw0rd!", now: start.addingTimeInterval(60)) }
        #expect(locked?.code == .accountLocked)
        // After the lock, one more wrong password does not lock again at once: the count starts over...
        let afterLock = await apiError { try await fixture.accounts.login(login: "carol", password: "bad-passw0rd", now: start.addingTimeInterval(901)) }
        #expect(afterLock?.code == .authFailed)
        // ...and the right password is accepted, which resets the count.
        _ = try await fixture.accounts.login(login: "carol", password: "passw0rd!", now: start.addingTimeInterval(901))
        let afterReset = await apiError { try await fixture.accounts.login(login: "carol", password: "bad-passw0rd", now: start.addingTimeInterval(902)) }
        #expect(afterReset?.code == .authFailed)
    }

    @Test func refreshRotatesAndReuseRevokesTheFamily() async throws {
        let fixture = try await Fixture()
        _ = try await fixture.register("dave")
        let first = try await fixture.accounts.login(login: "dave", password: "passw0rd!")
        let second = try await fixture.accounts.tokens.refresh(first.refreshToken, users: fixture.accounts.users)
        #expect(second.refreshToken != first.refreshToken)
        #expect(try await fixture.accepts(second.accessToken))
        // Presenting the spent token again revokes everything issued in that login.
        let reuse = await apiError { try await fixture.accounts.tokens.refresh(first.refreshToken, users: fixture.accounts.users) }
        #expect(reuse?.code == .invalidToken)
        #expect(try await !fixture.accepts(second.accessToken))
        let afterReuse = await apiError { try await fixture.accounts.tokens.refresh(second.refreshToken, users: fixture.accounts.users) }
        #expect(afterReuse?.code == .invalidToken)
        let garbage = await apiError { try await fixture.accounts.tokens.refresh("rt_garbage", users: fixture.accounts.users) }
        #expect(garbage?.code == .invalidToken)
    }

    @Test func logoutRevokesTheAccessTokenAndItsRefreshToken() async throws {
        let fixture = try await Fixture()
        _ = try await fixture.register("erin")
        let pair = try await fixture.accounts.login(login: "erin", password: "passw0rd!")
        let other = try await fixture.accounts.login(login: "erin", password: "passw0rd!")
        try await fixture.accounts.tokens.logout(try await fixture.verifier.verify(pair.accessToken))
        #expect(try await !fixture.accepts(pair.accessToken))
        let refresh = await apiError { try await fixture.accounts.tokens.refresh(pair.refreshToken, users: fixture.accounts.users) }
        #expect(refresh?.code == .invalidToken)
        // Another session of the same user is untouched.
        #expect(try await fixture.accepts(other.accessToken))
    }

    @Test func theLastAdminCannotBeDemotedOrDeleted() async throws {
        let fixture = try await Fixture()
        let admin = try await fixture.register("root", role: .admin)
        let demote = await apiError { try await fixture.accounts.setRole(target: admin.id, role: .engineer) }
        #expect(demote?.status == .conflict)
        let delete = await apiError { try await fixture.accounts.delete(target: admin.id) }
        #expect(delete?.status == .conflict)
        let second = try await fixture.register("root2", role: .admin)
        #expect(try await fixture.accounts.setRole(target: admin.id, role: .engineer).role == .engineer)
        let last = await apiError { try await fixture.accounts.delete(target: second.id) }
        #expect(last?.status == .conflict)
    }

    @Test func roleChangeAndDeletionRevokeExistingAccessTokens() async throws {
        let fixture = try await Fixture()
        let user = try await fixture.register("frank")
        let before = try await fixture.accounts.login(login: "frank", password: "passw0rd!")
        _ = try await fixture.accounts.setRole(target: user.id, role: .engineer)
        #expect(try await !fixture.accepts(before.accessToken))
        let after = try await fixture.accounts.login(login: "frank", password: "passw0rd!")
        #expect(try await fixture.accepts(after.accessToken))
        #expect(try await fixture.verifier.verify(after.accessToken).role == .engineer)
        try await fixture.accounts.delete(target: user.id)
        #expect(try await !fixture.accepts(after.accessToken))
        let gone = await apiError { try await fixture.accounts.tokens.refresh(after.refreshToken, users: fixture.accounts.users) }
        #expect(gone?.code == .invalidToken)
    }

    @Test func settingTheRoleAnAccountHasKeepsItsTokens() async throws {
        let fixture = try await Fixture()
        let user = try await fixture.register("grace")
        let before = try await fixture.accounts.login(login: "grace", password: "passw0rd!")
        #expect(try await fixture.accounts.setRole(target: user.id, role: user.role).role == user.role)
        #expect(try await fixture.accepts(before.accessToken))
    }

    @Test func passwordChangeNeedsTheCurrentPasswordForSelf() async throws {
        let fixture = try await Fixture()
        let user = try await fixture.register("gina")
        let session = try await fixture.accounts.login(login: "gina", password: "passw0rd!")
        let otherSession = try await fixture.accounts.login(login: "gina", password: "passw0rd!")
        let actor = try await fixture.verifier.verify(session.accessToken)
        let missing = await apiError {
            try await fixture.accounts.updateProfile(target: user.id, actor: actor, fullName: nil, email: nil, password: "newpassw0rd", currentPassword: nil)
        }
        #expect(missing?.details?["field"] == .string("current_password"))
        _ = try await fixture.accounts.updateProfile(target: user.id, actor: actor, fullName: "Gina G", email: nil,
                                                     password: "newpassw0rd", currentPassword: "passw0rd!")
        _ = try await fixture.accounts.login(login: "gina", password: "newpassw0rd")
        // Every earlier session ends: access and refresh tokens alike.
        #expect(try await !fixture.accepts(otherSession.accessToken))
        let stolen = await apiError { try await fixture.accounts.tokens.refresh(otherSession.refreshToken, users: fixture.accounts.users) }
        #expect(stolen?.code == .invalidToken)
        let nul = await apiError {
            try await fixture.accounts.register(username: "nul_user", email: "nul\u{0}@example.com", password: "passw0rd!", fullName: "", role: .analyst)
        }
        #expect(nul?.details?["field"] == .string("email"))
        let nulPassword = await apiError {
            try await fixture.accounts.register(username: "nul_user", email: "nul@example.com", password: "a1\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}", fullName: "", role: .analyst)
        }
        #expect(nulPassword?.details?["field"] == .string("password"))
        let other = try await fixture.register("hank")
        let forbidden = await apiError {
            try await fixture.accounts.updateProfile(target: other.id, actor: actor, fullName: "x", email: nil, password: nil, currentPassword: nil)
        }
        #expect(forbidden?.status == .forbidden)
    }

    @Test func firstAdminIsCreatedOnlyWhenNoneExists() async throws {
        let fixture = try await Fixture()
        let admin = GatewayConfiguration.BootstrapAdmin(username: "admin", email: "admin@example.com", password: "adm1nPassword")
        let logger = Logger(label: "test")
        #expect(try await fixture.accounts.bootstrapAdmin(admin, logger: logger))
        #expect(try await !fixture.accounts.bootstrapAdmin(admin, logger: logger))
        #expect(try await fixture.accounts.users.find(login: "admin")?.role == .admin)
    }
}
