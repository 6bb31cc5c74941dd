-- SQLite only (spans and traces become rowid tables there); PostgreSQL's tables are heaps already.
SELECT 1;
