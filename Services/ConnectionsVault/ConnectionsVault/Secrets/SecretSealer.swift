import Crypto
import Foundation

/// One secret version as stored: the data key wrapped by a master key, and the value sealed by the data key.
/// Both are AES-256-GCM combined boxes (nonce, ciphertext, tag); nothing in it is readable without a master key.
struct SealedSecret: Sendable, Equatable {
    /// The master key that wraps `wrappedKey`.
    var keyID: String
    /// The per-version data key, sealed by the master key.
    var wrappedKey: [UInt8]
    /// The value, sealed by the data key.
    var ciphertext: [UInt8]
}

/// Envelope encryption: every version gets its own random data key, which is wrapped by the active master key.
///
/// Both boxes authenticate the secret's path and version as associated data, so a sealed value copied to
/// another path or version does not open.
struct SecretSealer: Sendable {
    let keyring: MasterKeyring

    /// Seals `plaintext` for `path` at `version`.
    func seal(_ plaintext: Data, path: String, version: Int) throws -> SealedSecret {
        let dataKey = SymmetricKey(size: .bits256)
        let context = Self.context(path: path, version: version)
        let value = try AES.GCM.seal(plaintext, using: dataKey, authenticating: context)
        let wrapped = try AES.GCM.seal(dataKey.withUnsafeBytes { Data($0) }, using: keyring.key(keyring.activeKeyID), authenticating: context)
        guard let valueBytes = value.combined, let wrappedBytes = wrapped.combined else { throw VaultError.tampered }
        return SealedSecret(keyID: keyring.activeKeyID, wrappedKey: Array(wrappedBytes), ciphertext: Array(valueBytes))
    }

    /// Opens a sealed value; a tampered box, a wrong path or version, or a retired key fails.
    func unseal(_ sealed: SealedSecret, path: String, version: Int) throws -> Data {
        let context = Self.context(path: path, version: version)
        let dataKey = try unwrap(sealed, context: context)
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: sealed.ciphertext), using: dataKey, authenticating: context)
        } catch {
            throw VaultError.tampered
        }
    }

    /// The same secret with its data key wrapped by the active master key; the value itself is untouched.
    func rewrap(_ sealed: SealedSecret, path: String, version: Int) throws -> SealedSecret {
        guard sealed.keyID != keyring.activeKeyID else { return sealed }
        let context = Self.context(path: path, version: version)
        let dataKey = try unwrap(sealed, context: context)
        let wrapped = try AES.GCM.seal(dataKey.withUnsafeBytes { Data($0) }, using: keyring.key(keyring.activeKeyID), authenticating: context)
        guard let wrappedBytes = wrapped.combined else { throw VaultError.tampered }
        return SealedSecret(keyID: keyring.activeKeyID, wrappedKey: Array(wrappedBytes), ciphertext: sealed.ciphertext)
    }

    private func unwrap(_ sealed: SealedSecret, context: Data) throws -> SymmetricKey {
        let masterKey = try keyring.key(sealed.keyID)
        do {
            let raw = try AES.GCM.open(AES.GCM.SealedBox(combined: sealed.wrappedKey), using: masterKey, authenticating: context)
            guard raw.count == 32 else { throw VaultError.tampered }
            return SymmetricKey(data: raw)
        } catch {
            throw VaultError.tampered
        }
    }

    /// `vault:v1|<version>|<path>`: what each box is bound to.
    static func context(path: String, version: Int) -> Data {
        Data("vault:v1|\(version)|\(path)".utf8)
    }
}
