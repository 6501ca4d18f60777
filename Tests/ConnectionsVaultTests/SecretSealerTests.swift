@testable import ConnectionsVault
import Crypto
import Foundation
import Testing

@Suite struct SecretSealerTests {
    static func keyText(_ id: String) -> String {
        "\(id):" + SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString()
    }

    let first = keyText("k1")
    let second = keyText("k2")

    func sealer(_ configuration: String, active: String? = nil) throws -> SecretSealer {
        SecretSealer(keyring: try MasterKeyring(configuration: configuration, active: active))
    }

    @Test func sealedValueOpensOnlyForItsPathAndVersion() throws {
        let sealer = try sealer(first)
        let secret = Data(#"{"password":"s3cret-Passw0rd"}"#.utf8)
        let sealed = try sealer.seal(secret, path: "secret/a", version: 3)
        #expect(sealed.keyID == "k1")
        #expect(try sealer.unseal(sealed, path: "secret/a", version: 3) == secret)
        // The ciphertext does not contain the plaintext, and each seal uses a fresh data key and nonce.
        #expect(Data(sealed.ciphertext).range(of: Data("s3cret".utf8)) == nil)
        #expect(try sealer.seal(secret, path: "secret/a", version: 3).ciphertext != sealed.ciphertext)
        #expect(throws: VaultError.tampered) { try sealer.unseal(sealed, path: "secret/b", version: 3) }
        #expect(throws: VaultError.tampered) { try sealer.unseal(sealed, path: "secret/a", version: 4) }
    }

    @Test func tamperedBoxesAreRejected() throws {
        let sealer = try sealer(first)
        let sealed = try sealer.seal(Data("value".utf8), path: "p", version: 1)
        for index in [0, sealed.ciphertext.count / 2, sealed.ciphertext.count - 1] {
            var bad = sealed
            bad.ciphertext[index] ^= 0x01
            #expect(throws: VaultError.tampered) { try sealer.unseal(bad, path: "p", version: 1) }
        }
        var badKey = sealed
        badKey.wrappedKey[badKey.wrappedKey.count - 1] ^= 0x80
        #expect(throws: VaultError.tampered) { try sealer.unseal(badKey, path: "p", version: 1) }
        var truncated = sealed
        truncated.ciphertext = Array(truncated.ciphertext.prefix(10))
        #expect(throws: VaultError.tampered) { try sealer.unseal(truncated, path: "p", version: 1) }
    }

    @Test func unknownOrRetiredKeyIDIsAnError() throws {
        let sealed = try sealer(first).seal(Data("value".utf8), path: "p", version: 1)
        #expect(throws: VaultError.unknownKey("k1")) { try sealer(second).unseal(sealed, path: "p", version: 1) }
        // The same id with other key material is a failed authentication, not a readable value.
        let impostor = try sealer(Self.keyText("k1"))
        #expect(throws: VaultError.tampered) { try impostor.unseal(sealed, path: "p", version: 1) }
    }

    @Test func rotationRewrapsTheDataKeyAndKeepsTheValue() throws {
        let old = try sealer(first)
        let sealed = try old.seal(Data("value".utf8), path: "p", version: 2)
        let rotated = try sealer("\(first),\(second)", active: "k2")
        #expect(try rotated.unseal(sealed, path: "p", version: 2) == Data("value".utf8))
        let rewrapped = try rotated.rewrap(sealed, path: "p", version: 2)
        #expect(rewrapped.keyID == "k2")
        #expect(rewrapped.ciphertext == sealed.ciphertext)
        #expect(rewrapped.wrappedKey != sealed.wrappedKey)
        // Once rewrapped, the old key can be retired.
        #expect(try sealer(second).unseal(rewrapped, path: "p", version: 2) == Data("value".utf8))
        #expect(try rotated.rewrap(rewrapped, path: "p", version: 2) == rewrapped)
    }

    @Test(arguments: [
        "", "k1", "k1:notbase64!", "k1:" + Data(count: 16).base64EncodedString(), "bad id:" + Data(count: 32).base64EncodedString(),
    ])
    func invalidKeyConfigurationIsRefused(configuration: String) {
        #expect(throws: VaultError.self) { try MasterKeyring(configuration: configuration, active: nil) }
    }

    @Test func keyringPicksTheActiveKey() throws {
        #expect(try MasterKeyring(configuration: "\(first),\(second)", active: nil).activeKeyID == "k1")
        #expect(try MasterKeyring(configuration: "\(first), \(second)", active: "k2").activeKeyID == "k2")
        #expect(throws: VaultError.self) { try MasterKeyring(configuration: first, active: "k9") }
        #expect(throws: VaultError.self) { try MasterKeyring(configuration: "\(first),\(first)", active: nil) }
    }
}
