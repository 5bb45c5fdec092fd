-- The events not yet dispatched to their consumers. Recording an event adds its id
-- here in the event's transaction; the dispatcher takes ids in batches (`FOR UPDATE
-- SKIP LOCKED`, so instances never take the same one) and deletes them in the
-- transaction that makes the event's notification and queues its deliveries: each
-- event is dispatched exactly once. A narrow table of its own keeps the recording cheap
-- and the dispatcher's scan short; no foreign key, so recording checks nothing more.
CREATE TABLE event_outbox (
    event_id UUID PRIMARY KEY
);
-- Events were dispatched through one `events.dispatch` job each before: the ones still
-- waiting move here (dead ones stay jobs, for `palisade jobs retry`).
INSERT INTO event_outbox (event_id)
SELECT (payload::jsonb ->> 'event_id')::uuid FROM jobs
WHERE kind = 'events.dispatch' AND state <> 'dead';
DELETE FROM jobs WHERE kind = 'events.dispatch' AND state <> 'dead';
