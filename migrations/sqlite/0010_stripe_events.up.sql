-- Stripe's webhook events, by id: one that arrives again (Stripe retries, an attacker
-- replays) is answered without being processed twice. And payments found by their
-- provider's reference, as Stripe's events name them.
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX payments_provider_ref ON payments (provider_ref);
