-- palisade:no-transaction
-- The full-text index of payments' descriptions, for `GET /api/v1/search`: an
-- expression index (the query repeats the expression), built without blocking writes
-- and without rewriting the table.
CREATE INDEX CONCURRENTLY payments_search ON payments
USING GIN (to_tsvector('simple', COALESCE(description, '')));
