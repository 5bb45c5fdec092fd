DROP TABLE backup_codes;
DROP TABLE user_roles;
DROP TABLE users;
