-- Notifications: what a user is told of changes to their records and account, made
-- from the events (one per user and event at most), listed and streamed to them.
-- `events.owner_id` names whose record each event is about: who is told.
ALTER TABLE events ADD COLUMN owner_id BLOB;
CREATE TABLE notifications (
    id BLOB PRIMARY KEY,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT NOT NULL,
    read_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, event_id)
);
-- A user's list and stream, newest or oldest first by id (UUIDv7).
CREATE INDEX notifications_user ON notifications (user_id, id);
