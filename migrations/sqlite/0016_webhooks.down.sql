-- Deliveries still queued have no handler without the endpoints.
DELETE FROM jobs WHERE kind = 'webhook.deliver';
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
