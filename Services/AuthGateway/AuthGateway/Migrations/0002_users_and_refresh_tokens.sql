-- Accounts. Usernames and emails are unique regardless of case; the password is only ever a bcrypt hash.
CREATE TABLE users (
    id                 bigserial PRIMARY KEY,
    username           text NOT NULL,
    email              text NOT NULL,
    full_name          text NOT NULL DEFAULT '',
    password_hash      text NOT NULL,
    role               text NOT NULL CHECK (role IN ('analyst', 'engineer', 'architect', 'admin')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    last_login         timestamptz,
    -- Consecutive failed logins; at the configured threshold the account is locked until locked_until.
    failed_logins      integer NOT NULL DEFAULT 0,
    locked_until       timestamptz
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_role_idx ON users (role);

-- Refresh tokens, stored as SHA-256 hashes. A login starts a family; each refresh marks the presented token
-- used and issues the next one in the same family. Presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id                 bigserial PRIMARY KEY,
    token_hash         text NOT NULL UNIQUE,
    family_id          uuid NOT NULL,
    user_id            bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The access token issued together with this refresh token, so revoking one revokes the other.
    access_token_id    text NOT NULL,
    access_expires_at  timestamptz NOT NULL,
    issued_at          timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    used_at            timestamptz,
    revoked_at         timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_access_idx ON refresh_tokens (access_token_id);
