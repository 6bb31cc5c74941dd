-- Metric histories are read in step order with their values (get-history, the UI's charts). Carrying the
-- columns in the index lets those reads scan the index alone instead of looking up every row in the table.
DROP INDEX metrics_history;
CREATE INDEX metrics_history ON metrics (run_id, key, step, id, timestamp, value, is_nan);
