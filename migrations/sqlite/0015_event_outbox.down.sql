-- Back to one `events.dispatch` job per event still to dispatch.
INSERT INTO jobs (id, kind, dedupe_key, payload, state, attempts, max_attempts, run_at,
                  created_at, updated_at)
WITH pending (id, at) AS (
    SELECT lower(substr(hex(event_id), 1, 8) || '-' || substr(hex(event_id), 9, 4) || '-' ||
                 substr(hex(event_id), 13, 4) || '-' || substr(hex(event_id), 17, 4) || '-' ||
                 substr(hex(event_id), 21)),
           strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    FROM event_outbox
)
SELECT randomblob(16), 'events.dispatch', 'dispatch:' || id, json_object('event_id', id),
       'queued', 0, 8, at, at, at
FROM pending;
DROP TABLE event_outbox;
