DROP TABLE data_fixes;
