-- Metric histories are read in step order with their values (get-history, the UI's charts). Carrying the
-- columns in the index allows index-only scans instead of a heap fetch for every point.
DROP INDEX metrics_history;
CREATE INDEX metrics_history ON metrics (run_id, key, step, id) INCLUDE (timestamp, value, is_nan);
