-- Back to one `events.dispatch` job per event still to dispatch.
INSERT INTO jobs (id, kind, dedupe_key, payload, state, attempts, max_attempts, run_at,
                  created_at, updated_at)
SELECT gen_random_uuid(), 'events.dispatch', 'dispatch:' || event_id,
       json_build_object('event_id', event_id)::text, 'queued', 0, 8, now(), now(), now()
FROM event_outbox;
DROP TABLE event_outbox;
