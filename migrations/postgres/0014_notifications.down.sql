DROP TABLE notifications;
ALTER TABLE events DROP COLUMN owner_id;
