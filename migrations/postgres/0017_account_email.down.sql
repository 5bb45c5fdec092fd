DELETE FROM jobs WHERE kind = 'mail.send';
DROP TABLE mail_sent;
DROP TABLE account_tokens;
ALTER TABLE users DROP COLUMN email_verified_at;
