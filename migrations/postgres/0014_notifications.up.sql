-- Notifications: what a user is told of changes to their records and account, made
-- from the events (one per user and event at most), listed and streamed to them.
-- `events.owner_id` names whose record each event is about: who is told.
ALTER TABLE events ADD COLUMN owner_id UUID;
CREATE TABLE notifications (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id UUID NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data JSONB NOT NULL,
    read_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, event_id)
);
-- A user's list and stream, newest or oldest first by id (UUIDv7).
CREATE INDEX notifications_user ON notifications (user_id, id);
