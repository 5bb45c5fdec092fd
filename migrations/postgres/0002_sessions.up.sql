-- A session is one sign-in: the family of its rotating refresh tokens.
CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    -- Absolute expiry; the idle expiry is each refresh token's.
    expires_at TIMESTAMPTZ NOT NULL,
    -- How the user authenticated (`pwd`, `otp`), space-separated, and when.
    auth_methods TEXT NOT NULL,
    auth_time TIMESTAMPTZ NOT NULL,
    ip TEXT,
    user_agent TEXT,
    revoked_at TIMESTAMPTZ,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
-- The revocation set every instance reads: sessions revoked and not yet expired.
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens are stored as their SHA-256 only.
CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- Idle expiry.
    expires_at TIMESTAMPTZ NOT NULL,
    -- When it was exchanged for its successor.
    rotated_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id, generation);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- The short-lived, single-use token between the password step and the code step.
CREATE TABLE mfa_challenges (
    token_hash BYTEA PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires ON mfa_challenges (expires_at);
