-- Refunds of payments, and the idempotency keys of POST requests.
--
-- A refund moves part of a succeeded payment back; `payments.refunded_cents` is their
-- sum, kept in the refund's transaction.
CREATE TABLE refunds (
    id UUID PRIMARY KEY,
    payment_id UUID NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    requested_by UUID REFERENCES users (id) ON DELETE SET NULL,
    provider_ref TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id, id);
CREATE INDEX refunds_requested_by ON refunds (requested_by);

-- One row per (user, Idempotency-Key): claimed by the first request (insert if
-- absent), held by `lease_token` until `locked_until` while it runs, then holding the
-- answer to replay (`status`, `headers`, `body`) until `expires_at`. `outcome` names
-- what the first run committed (written in that run's transaction), so a run taking
-- over an expired lease continues it rather than doing it again.
CREATE TABLE idempotency_keys (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    fingerprint BYTEA NOT NULL,
    lease_token UUID,
    locked_until TIMESTAMPTZ,
    outcome TEXT,
    status INTEGER,
    headers TEXT,
    body BYTEA,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
