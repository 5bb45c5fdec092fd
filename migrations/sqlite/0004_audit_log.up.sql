-- The hash-chained audit log: each row carries the hash of the row before it and of
-- its own canonical content. `seq` is the chain's order, assigned by the writer
-- while it holds the chain's lock.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    occurred_at TEXT NOT NULL,
    actor_id BLOB,
    actor_ip TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    request_id TEXT,
    -- Canonical JSON.
    details TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_occurred ON audit_log (occurred_at);

-- Append-only for the application: changing history needs someone who can also
-- drop these triggers, and `palisade audit verify` finds what they changed.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
