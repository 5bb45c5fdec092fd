-- Contracts: a member's agreements with a counterparty, for an amount in one currency.
-- `version` counts changes (optimistic concurrency: `If-Match`). `search` is the
-- full-text document of title, counterparty and description ('simple': no stemming,
-- so a word matches as written, as on SQLite).
CREATE TABLE contracts (
    id UUID PRIMARY KEY,
    owner_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_on DATE,
    ends_on DATE,
    description TEXT NOT NULL,
    -- Space-separated, as sent; `contract_tags` is what filters.
    tags TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    search TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', title), 'A')
        || setweight(to_tsvector('simple', counterparty), 'B')
        || setweight(to_tsvector('simple', description), 'C')
    ) STORED
);
-- A member's list, newest first (ids are UUIDv7), and everyone's by status.
CREATE INDEX contracts_owner ON contracts (owner_id, id);
CREATE INDEX contracts_status ON contracts (status, id);
CREATE INDEX contracts_owner_status ON contracts (owner_id, status);
CREATE INDEX contracts_created ON contracts (created_at);
CREATE INDEX contracts_search ON contracts USING GIN (search);

CREATE TABLE contract_tags (
    tag TEXT NOT NULL,
    contract_id UUID NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, contract_id)
);
CREATE INDEX contract_tags_contract ON contract_tags (contract_id);

-- Payments against a contract. A contract's balance is read from here: the sums of
-- `amount_cents` of succeeded payments and of `refunded_cents`, per contract.
CREATE TABLE payments (
    id UUID PRIMARY KEY,
    contract_id UUID NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    payer_id UUID REFERENCES users (id) ON DELETE SET NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    failure_code TEXT,
    refunded_cents BIGINT NOT NULL DEFAULT 0,
    provider TEXT NOT NULL,
    provider_ref TEXT,
    description TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
-- Serves the balance (a contract's payments by status) and the contract's list.
CREATE INDEX payments_contract ON payments (contract_id, status);
CREATE INDEX payments_payer ON payments (payer_id, id);
CREATE INDEX payments_created ON payments (created_at);
