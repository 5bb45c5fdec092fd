-- Account e-mail: a verified flag on users, the single-use tokens of the e-mail flows,
-- and the mails sent to each address (the hourly cap per address).
--
-- `account_tokens.token_hash` is the SHA-256 of a 256-bit token sent in a link; the
-- token itself is never stored. `purpose` is `verify_email`, `reset_password` or
-- `change_email` (with the `new_email` it confirms). A token is used by setting
-- `used_at`, once, before `expires_at`.
ALTER TABLE users ADD COLUMN email_verified_at TEXT;
CREATE TABLE account_tokens (
    id BLOB PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    new_email TEXT,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX account_tokens_user ON account_tokens (user_id);
-- `recipient` is the SHA-256 (hex) of the address in canonical form.
CREATE TABLE mail_sent (
    id BLOB PRIMARY KEY,
    recipient TEXT NOT NULL,
    template TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX mail_sent_recipient ON mail_sent (recipient, created_at);
