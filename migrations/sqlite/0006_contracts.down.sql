DROP TABLE payments;
DROP TABLE contract_tags;
DROP TRIGGER contracts_fts_update;
DROP TRIGGER contracts_fts_delete;
DROP TRIGGER contracts_fts_insert;
DROP TABLE contracts_fts;
DROP TABLE contracts;
