DROP INDEX payments_provider_ref;
DROP TABLE stripe_events;
