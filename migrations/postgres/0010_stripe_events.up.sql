-- palisade:no-transaction
-- Stripe's webhook events, by id: one that arrives again (Stripe retries, an attacker
-- replays) is answered without being processed twice. And payments found by their
-- provider's reference, as Stripe's events name them (built without blocking writes).
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created BIGINT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX CONCURRENTLY payments_provider_ref ON payments (provider_ref);
