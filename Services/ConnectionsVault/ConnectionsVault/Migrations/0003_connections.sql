-- Connections hold metadata only; host, port, database, user and password live in the vault at vault_path.
CREATE TABLE connections (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    vault_path  text NOT NULL,
    environment text NOT NULL CHECK (environment IN ('production', 'staging', 'development')),
    description text NOT NULL DEFAULT '',
    tags        text[] NOT NULL DEFAULT '{}',
    is_active   boolean NOT NULL DEFAULT true,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX connections_vault_path_key ON connections (vault_path);
CREATE INDEX connections_environment_idx ON connections (environment);
CREATE INDEX connections_tags_idx ON connections USING gin (tags);
