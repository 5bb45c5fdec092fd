DROP TABLE mfa_challenges;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
