-- The hash-chained audit log: each row carries the hash of the row before it and of
-- its own canonical content. `seq` is the chain's order, assigned by the writer
-- while it holds the chain's lock.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    id UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_id UUID,
    actor_ip TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    request_id TEXT,
    -- Canonical JSON.
    details TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_occurred ON audit_log (occurred_at);

-- Append-only for the application: changing history needs someone who can also
-- drop this trigger, and `palisade audit verify` finds what they changed.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
