DROP TABLE payments;
DROP TABLE contract_tags;
DROP TABLE contracts;
