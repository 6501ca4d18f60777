-- The built-in secrets engine. Values are sealed (AES-256-GCM) under per-version data keys, which are wrapped by
-- master keys from configuration: nothing here is readable without them. key_id names the wrapping key.
CREATE TABLE vault_secrets (
    path            text PRIMARY KEY,
    current_version integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vault_secret_versions (
    path        text NOT NULL REFERENCES vault_secrets (path) ON DELETE CASCADE,
    version     integer NOT NULL,
    key_id      text NOT NULL,
    wrapped_key bytea NOT NULL,
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (path, version)
);
-- Rewrapping looks for versions still wrapped by an old key.
CREATE INDEX vault_secret_versions_key_idx ON vault_secret_versions (key_id);
