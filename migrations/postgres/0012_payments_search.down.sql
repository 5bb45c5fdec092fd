DROP INDEX payments_search;
