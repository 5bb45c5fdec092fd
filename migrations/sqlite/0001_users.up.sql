-- Accounts. `email` is stored normalised (trimmed, case-folded), so the unique index
-- is the uniqueness rule.
CREATE TABLE users (
    id BLOB PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    disabled_at TEXT,
    -- TOTP: the secret encrypted with ENCRYPTION_KEY (AES-256-GCM, nonce first), when
    -- and whether 2FA is on, and the last accepted time step (a code is never
    -- accepted twice).
    totp_secret BLOB,
    totp_enabled_at TEXT,
    totp_last_step INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_created ON users (created_at, id);

CREATE TABLE user_roles (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);

-- One-time 2FA backup codes, argon2id-hashed.
CREATE TABLE backup_codes (
    id BLOB PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX backup_codes_user ON backup_codes (user_id);
