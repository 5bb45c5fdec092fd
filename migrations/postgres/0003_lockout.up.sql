-- Per-account lockout, in the database so that it survives restarts and holds
-- across instances.
CREATE TABLE login_failures (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- Failures in the current window, and when it opened.
    failures INTEGER NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    -- Locks in a row: each doubles the next one's length.
    lockouts INTEGER NOT NULL,
    -- The hourly ceiling on failures.
    hour_failures INTEGER NOT NULL,
    hour_started_at TIMESTAMPTZ NOT NULL
);
