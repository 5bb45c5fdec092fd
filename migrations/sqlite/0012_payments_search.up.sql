-- The full-text index of payments' descriptions, for `GET /api/v1/search`. Its own
-- copy of the text keyed by the payment's id: `payments` has no INTEGER PRIMARY KEY,
-- so its implicit rowid may change on VACUUM and cannot anchor an external-content
-- index. A payment's description never changes; rows come and go with the payment.
CREATE VIRTUAL TABLE payments_fts USING fts5 (
    payment_id UNINDEXED, description,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO payments_fts (payment_id, description)
SELECT id, description FROM payments WHERE description IS NOT NULL;
CREATE TRIGGER payments_fts_insert AFTER INSERT ON payments
WHEN new.description IS NOT NULL
BEGIN
    INSERT INTO payments_fts (payment_id, description) VALUES (new.id, new.description);
END;
CREATE TRIGGER payments_fts_delete AFTER DELETE ON payments
BEGIN
    DELETE FROM payments_fts WHERE payment_id = old.id;
END;
