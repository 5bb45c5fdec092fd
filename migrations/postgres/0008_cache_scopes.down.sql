DROP TABLE cache_scopes;
