DROP TRIGGER payments_fts_delete;
DROP TRIGGER payments_fts_insert;
DROP TABLE payments_fts;
