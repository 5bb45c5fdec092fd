-- Contracts: a member's agreements with a counterparty, for an amount in one currency.
-- `version` counts changes (optimistic concurrency: `If-Match`).
CREATE TABLE contracts (
    -- The full-text index's row number. A table's implicit rowid may change on VACUUM
    -- unless an INTEGER PRIMARY KEY names it, and the index refers to it.
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    owner_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_on TEXT,
    ends_on TEXT,
    description TEXT NOT NULL,
    -- Space-separated, as sent; `contract_tags` is what filters.
    tags TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- A member's list, newest first (ids are UUIDv7), and everyone's by status.
CREATE INDEX contracts_owner ON contracts (owner_id, id);
CREATE INDEX contracts_status ON contracts (status, id);
CREATE INDEX contracts_owner_status ON contracts (owner_id, status);
CREATE INDEX contracts_created ON contracts (created_at);

-- The full-text index of title, counterparty and description: external content (the
-- text stays in `contracts`), kept in step by the triggers below.
CREATE VIRTUAL TABLE contracts_fts USING fts5 (
    title, counterparty, description,
    content = 'contracts', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER contracts_fts_insert AFTER INSERT ON contracts
BEGIN
    INSERT INTO contracts_fts (rowid, title, counterparty, description)
    VALUES (new.seq, new.title, new.counterparty, new.description);
END;
CREATE TRIGGER contracts_fts_delete AFTER DELETE ON contracts
BEGIN
    INSERT INTO contracts_fts (contracts_fts, rowid, title, counterparty, description)
    VALUES ('delete', old.seq, old.title, old.counterparty, old.description);
END;
CREATE TRIGGER contracts_fts_update AFTER UPDATE OF title, counterparty, description ON contracts
BEGIN
    INSERT INTO contracts_fts (contracts_fts, rowid, title, counterparty, description)
    VALUES ('delete', old.seq, old.title, old.counterparty, old.description);
    INSERT INTO contracts_fts (rowid, title, counterparty, description)
    VALUES (new.seq, new.title, new.counterparty, new.description);
END;

CREATE TABLE contract_tags (
    tag TEXT NOT NULL,
    contract_id BLOB NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, contract_id)
);
CREATE INDEX contract_tags_contract ON contract_tags (contract_id);

-- Payments against a contract. A contract's balance is read from here: the sums of
-- `amount_cents` of succeeded payments and of `refunded_cents`, per contract.
CREATE TABLE payments (
    id BLOB PRIMARY KEY,
    contract_id BLOB NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    payer_id BLOB REFERENCES users (id) ON DELETE SET NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    failure_code TEXT,
    refunded_cents INTEGER NOT NULL DEFAULT 0,
    provider TEXT NOT NULL,
    provider_ref TEXT,
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Serves the balance (a contract's payments by status) and the contract's list.
CREATE INDEX payments_contract ON payments (contract_id, status);
CREATE INDEX payments_payer ON payments (payer_id, id);
CREATE INDEX payments_created ON payments (created_at);
