-- The version of each cache scope (`all`, `owner:<id>`). Recording a domain event
-- bumps the versions of the scopes it touches, in the transaction of the change, and
-- cached values are keyed by version: every instance's next read after a committed
-- change misses, whether or not Redis is up.
CREATE TABLE cache_scopes (
    scope TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
