-- Account e-mail: a verified flag on users, the single-use tokens of the e-mail flows,
-- and the mails sent to each address (the hourly cap per address).
--
-- `account_tokens.token_hash` is the SHA-256 of a 256-bit token sent in a link; the
-- token itself is never stored. `purpose` is `verify_email`, `reset_password` or
-- `change_email` (with the `new_email` it confirms). A token is used by setting
-- `used_at`, once, before `expires_at`.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ;
CREATE TABLE account_tokens (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    new_email TEXT,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX account_tokens_user ON account_tokens (user_id);
-- `recipient` is the SHA-256 (hex) of the address in canonical form.
CREATE TABLE mail_sent (
    id UUID PRIMARY KEY,
    recipient TEXT NOT NULL,
    template TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX mail_sent_recipient ON mail_sent (recipient, created_at);
