-- A plain DROP INDEX: the migration linter cannot read DROP INDEX CONCURRENTLY yet.
DROP INDEX payments_provider_ref;
DROP TABLE stripe_events;
