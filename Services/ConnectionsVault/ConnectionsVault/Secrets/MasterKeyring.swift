import Crypto
import Foundation
import Platform

/// The key-encryption keys of the built-in vault, from configuration only (never from the database).
///
/// `VAULT_MASTER_KEYS` lists `id:base64` entries separated by commas, each a 32-byte AES-256 key; the active
/// one (which wraps new data keys) is `VAULT_ACTIVE_KEY`, or the first entry. Older keys stay listed until a
/// rewrap has moved every data key to the active one; then they can be retired.
struct MasterKeyring: Sendable {
    /// The key new data keys are wrapped with.
    let activeKeyID: String
    private let keys: [String: SymmetricKey]

    /// Every configured key id.
    var keyIDs: [String] { keys.keys.sorted() }

    init(keys: [String: SymmetricKey], activeKeyID: String) throws {
        guard keys[activeKeyID] != nil else { throw VaultError.configuration("the active key \(activeKeyID) is not among the master keys") }
        self.keys = keys
        self.activeKeyID = activeKeyID
    }

    /// Parses `id:base64,id:base64`; `active` picks the active key (default: the first entry).
    init(configuration text: String, active: String?) throws {
        var keys: [String: SymmetricKey] = [:]
        var first: String?
        for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !entry.isEmpty {
            let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, Self.isValidID(parts[0]) else {
                throw VaultError.configuration("each master key must be written id:base64 (id of letters, digits, '-', '_', '.')")
            }
            guard let bytes = Data(base64Encoded: parts[1]), bytes.count == 32 else {
                throw VaultError.configuration("master key \(parts[0]) must be the base64 of 32 bytes")
            }
            guard keys[parts[0]] == nil else { throw VaultError.configuration("master key \(parts[0]) is listed twice") }
            keys[parts[0]] = SymmetricKey(data: bytes)
            first = first ?? parts[0]
        }
        guard let first else { throw VaultError.configuration("no master key is configured (VAULT_MASTER_KEYS)") }
        try self.init(keys: keys, activeKeyID: active.flatMap { $0.isEmpty ? nil : $0 } ?? first)
    }

    /// The key with this id.
    func key(_ id: String) throws -> SymmetricKey {
        guard let key = keys[id] else { throw VaultError.unknownKey(id) }
        return key
    }

    static func isValidID(_ id: String) -> Bool {
        (1...64).contains(id.count) && id.unicodeScalars.allSatisfy {
            $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0))
        }
    }
}

/// Failures of the secrets engine. Descriptions never contain secret material.
enum VaultError: APIErrorConvertible, Equatable, CustomStringConvertible {
    /// The vault is misconfigured (keys).
    case configuration(String)
    /// A data key was wrapped by a key that is not configured (retired too early, or another installation's).
    case unknownKey(String)
    /// A sealed value failed authentication: tampered, truncated, or bound to another path or version.
    case tampered
    /// The external vault could not be reached, refused the platform's token, or answered something unexpected.
    case unavailable(String)
    /// A path outside the part of an external vault the platform may use.
    case pathNotAllowed(prefix: String)

    var description: String {
        switch self {
        case .configuration(let reason): "vault configuration: \(reason)"
        case .unknownKey(let id): "no master key with id \(id) is configured"
        case .tampered: "a sealed secret failed authentication"
        case .unavailable(let reason): "vault unavailable: \(reason)"
        case .pathNotAllowed(let prefix): "vault path outside \(prefix)"
        }
    }

    /// An unreachable vault is a 503 for the client; every other vault failure is the platform's own (500).
    var apiError: APIError {
        switch self {
        case .unavailable: APIError(.serviceUnavailable, code: .serviceUnavailable, message: "The secrets vault is unavailable")
        case .pathNotAllowed(let prefix): APIError.validation(field: "vault_path", reason: "must start with \(prefix)")
        default: APIError(.internalServerError, code: .internalError, message: "Internal server error")
        }
    }
}
