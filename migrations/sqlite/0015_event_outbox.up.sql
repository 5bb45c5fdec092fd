-- The events not yet dispatched to their consumers. Recording an event adds its id
-- here in the event's transaction; the dispatcher takes ids in batches and deletes
-- them in the transaction that makes the event's notification and queues its
-- deliveries: each event is dispatched exactly once. A narrow table of its own keeps
-- the recording cheap and the dispatcher's scan short; no foreign key, so recording
-- checks nothing more.
CREATE TABLE event_outbox (
    event_id BLOB PRIMARY KEY NOT NULL
);
-- Events were dispatched through one `events.dispatch` job each before: the ones still
-- waiting move here (dead ones stay jobs, for `palisade jobs retry`); ids are stored as
-- 16 bytes.
INSERT INTO event_outbox (event_id)
SELECT unhex(replace(json_extract(payload, '$.event_id'), '-', ''))
FROM jobs WHERE kind = 'events.dispatch' AND state <> 'dead';
DELETE FROM jobs WHERE kind = 'events.dispatch' AND state <> 'dead';
