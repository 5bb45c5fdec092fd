-- Changes to existing rows that SQL cannot express, made once by the application when
-- it opens the database (the canonical form of e-mail addresses needs Unicode NFC and
-- IDNA). One row per fix, with what it did.
CREATE TABLE data_fixes (
    name TEXT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL,
    -- JSON: the rows changed, and those left alone with the reason.
    report TEXT NOT NULL
);
