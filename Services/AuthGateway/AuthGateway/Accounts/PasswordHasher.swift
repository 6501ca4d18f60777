import HummingbirdBcrypt
import NIOPosix

/// bcrypt hashing on a thread pool: one hash costs tens of milliseconds at cost 12, which must not stall
/// an event loop or the cooperative pool.
struct PasswordHasher: Sendable {
    /// bcrypt cost (work factor 2^cost).
    let cost: UInt8
    let threadPool: NIOThreadPool

    /// A hash of a password that matches no input, so a login for an unknown user costs what a wrong password
    /// costs and the two cannot be told apart by timing.
    let decoyHash: String

    init(cost: UInt8, threadPool: NIOThreadPool) {
        self.cost = cost
        self.threadPool = threadPool
        self.decoyHash = Bcrypt.hash(String(UInt64.random(in: .min ... .max), radix: 36), cost: cost)
    }

    /// The bcrypt hash of `password`.
    func hash(_ password: String) async throws -> String {
        try await threadPool.runIfActive { [cost] in Bcrypt.hash(password, cost: cost) }
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it checks against the decoy and fails.
    func verify(_ password: String, against hash: String?) async throws -> Bool {
        let matches = try await threadPool.runIfActive { [decoyHash] in Bcrypt.verify(password, hash: hash ?? decoyHash) }
        return hash != nil && matches
    }
}
