import Foundation
import NIOPosix
import Platform

/// The secrets engine a deployment runs with: HashiCorp Vault when `vault.addr` and a token are configured, the
/// built-in engine otherwise.
enum SecretsEngine: Sendable {
    case builtIn(BuiltInSecretBackend)
    case hashiCorp(HashiCorpVaultBackend)

    /// Reads the engine's settings. The built-in engine needs `vault.master_keys`; HashiCorp Vault needs
    /// `vault.addr` and `vault.token` (or `vault.token_file`), optionally `vault.namespace`, `vault.cacert`,
    /// `vault.path_prefix`. Blocking Vault requests run on `threadPool`.
    static func configured(platform: PlatformServices, schema: String, threadPool: NIOThreadPool) throws -> SecretsEngine {
        let config = platform.settings.config
        let retained = config.int(forKey: "vault.retained_versions", default: 10)
        if let address = config.string(forKey: "vault.addr"), !address.isEmpty {
            let token: VaultToken
            if let inline = config.string(forKey: "vault.token", isSecret: true), !inline.isEmpty {
                token = VaultToken(inline: inline)
            } else if let file = config.string(forKey: "vault.token_file"), !file.isEmpty {
                token = try VaultToken(file: file)
            } else {
                throw VaultError.configuration("VAULT_ADDR is set but no VAULT_TOKEN (or VAULT_TOKEN_FILE)")
            }
            var options = CurlHTTPClient.Options()
            options.caFile = config.string(forKey: "vault.cacert")
            options.timeout = .seconds(config.int(forKey: "vault.timeout_seconds", default: 10))
            return .hashiCorp(HashiCorpVaultBackend(
                settings: .init(address: address, token: token, namespace: config.string(forKey: "vault.namespace"),
                                retainedVersions: retained, pathPrefix: config.string(forKey: "vault.path_prefix", default: "secret/database/")),
                client: CurlHTTPClient(threadPool: threadPool, options: options), logger: platform.logger))
        }
        let keyring = try MasterKeyring(
            configuration: config.string(forKey: "vault.master_keys", isSecret: true) ?? "",
            active: config.string(forKey: "vault.active_key"))
        return .builtIn(try BuiltInSecretBackend(
            postgres: platform.postgres, schema: schema, sealer: SecretSealer(keyring: keyring), retainedVersions: retained))
    }

    /// The backend itself, without the audit trail.
    var backend: any SecretBackend {
        switch self {
        case .builtIn(let backend): backend
        case .hashiCorp(let backend): backend
        }
    }

    /// How `/health` and the logs name it.
    var name: String {
        switch self {
        case .builtIn: "built-in"
        case .hashiCorp: "hashicorp-vault"
        }
    }
}
