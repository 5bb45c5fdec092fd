-- Outbound webhooks: the endpoints events are sent to, and the log of every attempt.
--
-- An endpoint's secret is stored sealed (AES-256-GCM under the server's key). After a
-- rotation the previous secret keeps signing beside the new one until
-- `previous_until`. `failing_since` is when the current run of failed attempts began
-- (NULL after a success; a failure after a quiet gap longer than the longest retry
-- wait starts a new run), `last_failure_at` the latest failure: a run as long as the
-- configured limit (three days by default) disables the endpoint (`disabled_at`,
-- `disabled_reason`). `events` is the JSON list of event types sent to it.
CREATE TABLE webhook_endpoints (
    id BLOB PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    secret BLOB NOT NULL,
    previous_secret BLOB,
    previous_until TEXT,
    failing_since TEXT,
    last_failure_at TEXT,
    disabled_at TEXT,
    disabled_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- One row per attempt to send an event to an endpoint. `message_id` is the
-- `webhook-id` header: the same for every attempt of one event to one endpoint.
CREATE TABLE webhook_deliveries (
    id BLOB PRIMARY KEY,
    endpoint_id BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    event_id BLOB NOT NULL,
    event_type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status_code INTEGER,
    duration_ms INTEGER NOT NULL,
    error TEXT,
    next_retry_at TEXT,
    created_at TEXT NOT NULL
);
-- An endpoint's log, newest first by id (UUIDv7).
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
