-- Each user's plan: what Stripe last said of their subscription, or what an admin
-- set. A row appears when the user first needs one (a Stripe customer, a plan set).
--
-- `stripe_version` is the `created` time of the Stripe event (or call) that last set
-- the row: an older event arriving late never moves the row back. `revision` counts
-- every write, so a change is applied only to the row it was computed from.
CREATE TABLE subscriptions (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    plan TEXT NOT NULL,
    status TEXT NOT NULL,
    stripe_customer TEXT UNIQUE,
    stripe_subscription TEXT,
    current_period_end TIMESTAMPTZ,
    cancel_at_period_end BOOLEAN NOT NULL,
    stripe_version BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
