-- Domain events: one row per state change, written in the change's transaction (the
-- outbox every consumer reads). `id` is a UUIDv7, so ids sort by creation.
CREATE TABLE events (
    id UUID PRIMARY KEY,
    type TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    actor_id UUID,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_subject ON events (subject_type, subject_id, id);
CREATE INDEX events_created ON events (created_at);
