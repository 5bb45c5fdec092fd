-- The job queue: every deferred delivery (notifications, webhook deliveries, mail).
--
-- A job waits `queued` until `run_at`; a worker claims it (`running`, `lease_token`,
-- `locked_until`, one more `attempts`) and renews the lease while it works; done, it is
-- deleted; failed, it waits again with a backoff, or after its last attempt stays
-- `dead` for an operator. A lease that lapses (its worker died) makes the job
-- claimable again. `dedupe_key` makes an enqueue idempotent while the job exists.
CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_at TIMESTAMPTZ NOT NULL,
    lease_token UUID,
    locked_until TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
-- The claim: due queued jobs, and running ones whose lease lapsed.
CREATE INDEX jobs_queued ON jobs (state, run_at);
CREATE INDEX jobs_locked ON jobs (state, locked_until);
